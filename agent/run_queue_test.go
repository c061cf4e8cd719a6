//go:build unix

package agent

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

func TestReclaimRotatesCredentials(t *testing.T) {
	// A 2 s claim: each credential set expires 2 s after it was issued, so
	// the task (4 s) can only report if the agent uses the reclaimed ones.
	e := newEnv(t, devqueue.Config{ClaimTimeout: 2 * time.Second})
	cfg := e.config()
	e.startAgent(cfg)
	id := e.createTask(shPayload("sleep 4", 60))
	// The journal follows the rotation, so that a restart can resolve the
	// run with credentials that still work.
	journalled := map[string]bool{}
	waitFor(t, "rotated credentials in the journal", func() bool {
		entries, _ := cfg.Journal.Entries()
		for _, en := range entries {
			journalled[en.Credentials.ClientID] = true
		}
		return len(journalled) >= 2
	})
	expectRun(t, e.waitRun(id, 0), "completed", "completed")
	reclaims := e.proxy.callsMatching(http.MethodPost, "/task/"+id+"/runs/0/reclaim")
	if len(reclaims) < 2 {
		t.Fatalf("%d reclaims, want at least 2", len(reclaims))
	}
	seen := map[string]bool{}
	for _, c := range reclaims {
		if c.status != 200 {
			t.Errorf("reclaim answered %d", c.status)
		}
		if seen[c.clientID] {
			t.Errorf("credentials %s used for two reclaims: not rotated", c.clientID)
		}
		seen[c.clientID] = true
	}
	rep := e.waitReports(id)
	if len(rep) != 1 || rep[0].status != 200 {
		t.Fatalf("reports %v, want one successful", rep)
	}
	if seen[rep[0].clientID] {
		t.Errorf("report used credentials %s that a reclaim had replaced", rep[0].clientID)
	}
}

func TestReclaimConflictKillsWithoutReport(t *testing.T) {
	// No cancel watcher: only the reclaim's 409 can tell the agent.
	e := newEnv(t, devqueue.Config{ClaimTimeout: 3 * time.Second})
	cfg := e.config()
	e.startAgent(cfg)
	pidFile := filepath.Join(e.dir, "pid")
	id := e.createTask(shPayload(fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile), 600))
	pid := readPid(t, pidFile)
	if _, err := e.root.CancelTask(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "task process gone after reclaim 409", func() bool { return !alive(pid) })
	waitFor(t, "run forgotten", func() bool {
		entries, _ := cfg.Journal.Entries()
		return len(entries) == 0
	})
	conflicts := 0
	for _, c := range e.proxy.callsMatching(http.MethodPost, "/task/"+id+"/runs/0/reclaim") {
		if c.status == http.StatusConflict {
			conflicts++
		}
	}
	if conflicts != 1 {
		t.Errorf("%d reclaims answered 409, want 1", conflicts)
	}
	if r := e.proxy.reports(id); len(r) != 0 {
		t.Errorf("agent reported after a reclaim 409: %v", r)
	}
}

func TestShutdownResolvesWorkerShutdown(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	stop := e.startAgent(e.config())
	pidFile := filepath.Join(e.dir, "pid")
	// Run 0 prints, then hangs until killed; the retry run ends at once.
	id := e.createTask(shPayload(fmt.Sprintf(`echo printed-before-the-kill; echo $$ > %s; if [ "$RUN_ID" = 0 ]; then sleep 300; fi`, pidFile), 600))
	pid := readPid(t, pidFile)
	stop()
	expectRun(t, e.waitRun(id, 0), "exception", "worker-shutdown")
	if alive(pid) {
		t.Error("task still running after the agent stopped")
	}
}

func TestCapacityTwoRunsTasksTogether(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	cfg.Capacity = 2
	e.startAgent(cfg)
	a, b := filepath.Join(e.dir, "a"), filepath.Join(e.dir, "b")
	// Each task waits (up to 30 s) for the other's marker: both complete
	// only if they run at the same time.
	script := `touch %s; i=0; while [ ! -e %s ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`
	id1 := e.createTask(shPayload(fmt.Sprintf(script, a, b), 60))
	id2 := e.createTask(shPayload(fmt.Sprintf(script, b, a), 60))
	expectRun(t, e.waitRun(id1, 0), "completed", "completed")
	expectRun(t, e.waitRun(id2, 0), "completed", "completed")
}

func TestTransientQueueErrors(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	// Every third request fails with a 500 before reaching the queue,
	// every seventh other one reaches the queue but its answer is lost (a
	// 502 instead), and every fifth is delayed. claimWork answers are never
	// lost: a claim the agent never hears of can only expire.
	e.proxy.setFaults(func(r *http.Request, n int) fault {
		var f fault
		if n%5 == 0 {
			f.delay = 150 * time.Millisecond
		}
		switch {
		case n%3 == 0:
			f.status = http.StatusInternalServerError
		case n%7 == 0 && !strings.Contains(r.URL.Path, "/claim-work/"):
			f.lost = true
		}
		return f
	})
	cfg := e.config()
	cfg.Capacity = 2
	e.startAgent(cfg)
	var ids []string
	for i := range 6 {
		ids = append(ids, e.createTask(map[string]any{
			"command":    [][]string{{"/bin/sh", "-c", fmt.Sprintf("echo task %d > out.txt; exit %d", i, i%2)}},
			"artifacts":  []map[string]any{{"type": "file", "path": "out.txt", "name": "public/out.txt"}},
			"maxRunTime": 60,
		}))
	}
	for i, id := range ids {
		want := []string{"completed", "failed"}[i%2]
		expectRun(t, e.waitRun(id, 0), want, want)
		st := e.status(id)
		if len(st.Runs) != 1 {
			t.Errorf("task %d has %d runs, want 1", i, len(st.Runs))
		}
		// The proxy records a call once its answer is sent, which may be
		// after the status already shows the resolution.
		ok := 0
		waitFor(t, "successful report recorded", func() bool {
			ok = 0
			for _, c := range e.proxy.reports(id) {
				if c.status == 200 {
					ok++
				}
			}
			return ok > 0
		})
		// A report whose answer was lost is repeated; the queue takes the
		// repeat as the same resolution, so the run is still resolved once.
		if ok != 1 {
			t.Errorf("task %d: %d successful reports, want exactly 1", i, ok)
		}
		if got := e.artifactContent(id, 0, "public/out.txt"); got != fmt.Sprintf("task %d\n", i) {
			t.Errorf("task %d artifact = %q", i, got)
		}
	}
	if n := len(e.proxy.callsMatching("", "")); n == 0 {
		t.Fatal("no calls went through the proxy")
	}
	refused, lost := 0, 0
	for _, c := range e.proxy.callsMatching("", "") {
		switch c.status {
		case http.StatusInternalServerError:
			refused++
		case http.StatusBadGateway:
			lost++
		}
	}
	if refused == 0 || lost == 0 {
		t.Errorf("faults injected: %d refused, %d lost; the test needs both", refused, lost)
	}
}

func TestKilledAgentRunResolvedOnRestart(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	pidFile := filepath.Join(e.dir, "pid")
	// Run 0 prints, then hangs until killed; the retry run ends at once.
	id := e.createTask(shPayload(fmt.Sprintf(`echo printed-before-the-kill; echo $$ > %s; if [ "$RUN_ID" = 0 ]; then sleep 300; fi`, pidFile), 600))

	// The first agent runs in a child process, killed with SIGKILL once the
	// command has started: no chance to report anything.
	child := startAgentProcess(t, helperConfig{
		RootURL: e.proxy.URL(), ClientID: e.stack.Credentials.ClientID, AccessToken: e.stack.Credentials.AccessToken,
		TaskQueueID: e.taskQueueID, WorkerGroup: e.workerGroup, WorkerID: e.workerID,
		TasksDir: cfg.TasksDir, JournalDir: filepath.Join(e.dir, "state", "journal"),
	})
	pid := readPid(t, pidFile)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	// The orphaned task's process group is not the agent's to clean up in
	// this test; kill it so it does not outlive the test.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if st := e.status(id); st.Runs[0].State != "running" {
		t.Fatalf("run 0 is %s after the agent was killed, want still running", st.Runs[0].State)
	}
	entries, err := cfg.Journal.Entries()
	if err != nil || len(entries) != 1 || entries[0].TaskID != id {
		t.Fatalf("journal after kill: %v, %v; want the one run", entries, err)
	}

	left := entries[0]
	for _, p := range []string{left.TaskDir, left.Log} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("journal entry names %s, which is not there after the kill: %v", p, err)
		}
	}

	// A new agent uploads the saved log and resolves the run at start;
	// the queue then retries the task.
	restarted := time.Now()
	e.startAgent(cfg)
	expectRun(t, e.waitRun(id, 0), "exception", "worker-shutdown")
	t.Logf("run resolved %s after the restart", time.Since(restarted).Round(time.Millisecond))
	arts := e.artifacts(id, 0)
	if arts[BackingLogName].StorageType != "s3" || arts[LiveLogName].StorageType != "link" {
		t.Fatalf("artifacts of the killed run: %+v; want %s (s3) and %s (link to it)", arts, BackingLogName, LiveLogName)
	}
	for _, name := range []string{BackingLogName, LiveLogName} {
		log := e.artifactContent(id, 0, name)
		for _, want := range []string{"Task: " + id, "printed-before-the-kill", "Worker restarted at ", "Result: exception/worker-shutdown"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s of the killed run lacks %q:\n%s", name, want, log)
			}
		}
	}
	waitFor(t, "journal emptied", func() bool {
		entries, _ := cfg.Journal.Entries()
		for _, en := range entries {
			if en.RunID == 0 {
				return false
			}
		}
		return true
	})
	st := e.status(id)
	if len(st.Runs) < 2 || st.Runs[1].ReasonCreated != "retry" {
		t.Fatalf("no retry run after worker-shutdown: %+v", st.Runs)
	}
	for _, p := range []string{left.TaskDir, left.Log} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of the recovered run is still there (%v)", p, err)
		}
	}
}
