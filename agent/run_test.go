//go:build unix

package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	"github.com/labrunner/labrunner/internal/devqueue"
)

func TestTaskCompletesWithLogsAndHeader(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	cfg.LiveLogServer = NewLiveLogServer()
	cfg.LiveLogURL = "http://livelog.example.com:60099"
	e.startAgent(cfg)

	id := e.createTask(map[string]any{
		"command": [][]string{
			{"/bin/sh", "-c", `echo "hello from $TASK_ID run $RUN_ID in $TASK_WORKDIR with $GREETING"`},
			{"/bin/sh", "-c", `test "$PWD" = "$TASK_WORKDIR" && echo second-command-ran`},
		},
		"env":        map[string]string{"GREETING": "bonjour"},
		"maxRunTime": 60,
	})
	run := e.waitRun(id, 0)
	expectRun(t, run, "completed", "completed")

	arts := e.artifacts(id, 0)
	if a := arts[BackingLogName]; a.StorageType != "s3" {
		t.Fatalf("%s: storageType %q, want s3 (artifacts %v)", BackingLogName, a.StorageType, arts)
	}
	if a := arts[LiveLogName]; a.StorageType != "link" {
		t.Fatalf("%s: storageType %q, want link", LiveLogName, a.StorageType)
	}
	// The reference created at start was replaced by the link: it must
	// have been created, through the proxy, as a reference first.
	if n := len(e.proxy.callsMatching(http.MethodPost, "/task/"+id+"/runs/0/artifacts/public%2Flogs%2Flive.log")); n != 2 {
		t.Errorf("live.log created %d times, want 2 (reference, then link)", n)
	}
	log := e.artifactContent(id, 0, LiveLogName)
	for _, want := range []string{
		"Worker: " + e.workerGroup + "/" + e.workerID,
		"Pool: " + e.taskQueueID,
		"Task: " + id,
		"Run: 0",
		"Agent: labrunner test",
		fmt.Sprintf("hello from %s run 0 in ", id),
		"with bonjour",
		"second-command-ran",
		"Result: completed",
		"Run took",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if n := len(e.waitReports(id)); n != 1 {
		t.Errorf("%d resolution calls, want 1", n)
	}
}

func TestNonZeroExitFails(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	id := e.createTask(map[string]any{
		"command": [][]string{
			{"/bin/sh", "-c", "echo failing; exit 3"},
			{"/bin/sh", "-c", "echo must-not-run"},
		},
		"maxRunTime": 60,
	})
	expectRun(t, e.waitRun(id, 0), "failed", "failed")
	log := e.artifactContent(id, 0, BackingLogName)
	if !strings.Contains(log, "exit code 3") || strings.Contains(log, "must-not-run\n") {
		t.Errorf("log should show exit code 3 and no second command:\n%s", log)
	}
}

func TestMaxRunTimeFails(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	pidFile := filepath.Join(e.dir, "pid")
	id := e.createTask(shPayload(fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile), 1))
	expectRun(t, e.waitRun(id, 0), "failed", "failed")
	if !strings.Contains(e.artifactContent(id, 0, BackingLogName), "max run time exceeded") {
		t.Error("log does not give the max run time as the reason")
	}
	pid := readPid(t, pidFile)
	waitFor(t, "timed-out task's background process gone", func() bool { return !alive(pid) })
}

func TestCancelStopsWholeTreeWithoutReport(t *testing.T) {
	for _, watcher := range []string{"poll", "pulse"} {
		t.Run(watcher, func(t *testing.T) {
			e := newEnv(t, devqueue.Config{})
			cfg := e.config()
			switch watcher {
			case "poll":
				cfg.Cancel = &PollCancelWatcher{Interval: 100 * time.Millisecond}
			case "pulse":
				prov, wt, _ := strings.Cut(e.taskQueueID, "/")
				w := NewPulseCancelWatcher(e.stack.Bus, "queue/test/agent-"+e.workerID, prov, wt, e.workerGroup, e.workerID, nil)
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				go func() { _ = w.Run(ctx) }()
				<-w.Ready()
				cfg.Cancel = w
			}
			e.startAgent(cfg)
			pidFile := filepath.Join(e.dir, "grandchild")
			// The grandchild ignores SIGTERM: only the kill after the grace
			// period can end it.
			id := e.createTask(shPayload(fmt.Sprintf(`/bin/sh -c 'trap "" TERM; sleep 300 & echo $! > %s; wait' ; sleep 300`, pidFile), 600))
			pid := readPid(t, pidFile)
			if _, err := e.root.CancelTask(id); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "grandchild gone after cancel", func() bool { return !alive(pid) })
			expectRun(t, e.waitRun(id, 0), "exception", "canceled")
			// The agent must report nothing; wait until it has finished
			// with the run (its journal entry is gone) before checking.
			waitFor(t, "run forgotten", func() bool {
				entries, _ := cfg.Journal.Entries()
				return len(entries) == 0
			})
			if r := e.proxy.reports(id); len(r) != 0 {
				t.Errorf("agent reported a cancelled run: %v", r)
			}
		})
	}
}

func TestMalformedPayload(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	id := e.createTask(map[string]any{"command": [][]string{{"true"}}, "maxRunTime": 0})
	expectRun(t, e.waitRun(id, 0), "exception", "malformed-payload")
	log := e.artifactContent(id, 0, BackingLogName)
	if !strings.Contains(log, "payload.maxRunTime") {
		t.Errorf("log does not name the bad field:\n%s", log)
	}
}

func TestArtifacts(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	id := e.createTask(map[string]any{
		"command": [][]string{{"/bin/sh", "-c", `mkdir -p out/sub && echo file-body > report.txt && echo one > out/a.json && echo two > out/sub/b.log`}},
		"artifacts": []map[string]any{
			{"type": "file", "path": "report.txt", "name": "public/report.txt"},
			{"type": "directory", "path": "out", "name": "public/out"},
			{"type": "file", "path": "missing.txt", "name": "public/missing.txt"},
		},
		"maxRunTime": 60,
	})
	// A missing artifact fails a task whose commands succeeded.
	expectRun(t, e.waitRun(id, 0), "failed", "failed")
	arts := e.artifacts(id, 0)
	for name, kind := range map[string]string{
		"public/report.txt":    "s3",
		"public/out/a.json":    "s3",
		"public/out/sub/b.log": "s3",
		"public/missing.txt":   "error",
	} {
		if arts[name].StorageType != kind {
			t.Errorf("artifact %s: storageType %q, want %q (all: %v)", name, arts[name].StorageType, kind, arts)
		}
	}
	if got := arts["public/out/sub/b.log"].ContentType; got != "text/plain" {
		t.Errorf("b.log content type %q, want text/plain", got)
	}
	for name, want := range map[string]string{"public/report.txt": "file-body\n", "public/out/sub/b.log": "two\n"} {
		if got := e.artifactContent(id, 0, name); got != want {
			t.Errorf("artifact %s = %q, want %q", name, got, want)
		}
	}
	// A gzip upload is declared as such to the putUrl.
	if !strings.Contains(e.artifactContent(id, 0, BackingLogName), "public/missing.txt: Could not read file") {
		t.Error("log does not explain the missing artifact")
	}
}

func TestRetryExitCodeIsIntermittent(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	marker := filepath.Join(e.dir, "attempted")
	// First run exits 42 (a retry code), the rerun succeeds.
	id := e.createTask(map[string]any{
		"command":      [][]string{{"/bin/sh", "-c", fmt.Sprintf(`if [ -e %[1]s ]; then exit 0; fi; touch %[1]s; exit 42`, marker)}},
		"maxRunTime":   60,
		"onExitStatus": map[string]any{"retry": []int{42}},
	})
	expectRun(t, e.waitRun(id, 0), "exception", "intermittent-task")
	run1 := e.waitRun(id, 1)
	expectRun(t, run1, "completed", "completed")
	if run1.ReasonCreated != "task-retry" {
		t.Errorf("run 1 reasonCreated %q, want task-retry", run1.ReasonCreated)
	}
}

func TestRunTaskLocally(t *testing.T) {
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := NewLocalRun([]byte(`{"command": [["/bin/sh", "-c", "echo local > result.txt; echo to-terminal; exit 5"]], "maxRunTime": 30,
		"artifacts": [{"type": "file", "path": "result.txt", "name": "public/result.txt"}]}`), filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	var term strings.Builder
	res := a.RunOne(context.Background(), run, &syncWriter{w: &term})
	if res.TaskExitCode() != 5 || res.Resolution != Failed {
		t.Errorf("result %+v (exit %d), want failed with exit code 5", res, res.TaskExitCode())
	}
	if !strings.Contains(term.String(), "to-terminal") {
		t.Errorf("terminal did not get the log:\n%s", term.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "artifacts", "public", "result.txt"))
	if err != nil || string(b) != "local\n" {
		t.Errorf("artifact copy: %q, %v", b, err)
	}
	if got, ok := run.Resolution(); !ok || got != Failed {
		t.Errorf("local run resolution %v, %v", got, ok)
	}
}

// syncWriter serialises writes for tests that read the result afterwards.
type syncWriter struct {
	w *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func TestPreflightRefusalIsResourceUnavailable(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	cfg.Preflight = func(context.Context) error { return errors.New("only 12 MB free in tasksDir") }
	e.startAgent(cfg)
	marker := filepath.Join(e.dir, "ran")
	id := e.createTask(shPayload("touch "+marker, 60))
	expectRun(t, e.waitRun(id, 0), "exception", "resource-unavailable")
	if !strings.Contains(e.artifactContent(id, 0, BackingLogName), "only 12 MB free") {
		t.Error("log does not give the refusal's reason")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although the machine refused the task")
	}
}

func TestLiveLogStreamsWhileTaskRuns(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	cfg.LiveLogServer = NewLiveLogServer()
	ls := httptest.NewServer(cfg.LiveLogServer)
	t.Cleanup(ls.Close)
	cfg.LiveLogURL = ls.URL
	e.startAgent(cfg)
	release := filepath.Join(e.dir, "release")
	id := e.createTask(shPayload(fmt.Sprintf(`echo streamed-before-end; while [ ! -e %s ]; do sleep 0.05; done; echo after-release`, release), 60))

	// live.log is a reference to the agent's live log server while the
	// task runs: follow it and read the first line before the task ends.
	var liveURL string
	waitFor(t, "live.log reference", func() bool {
		u, err := e.root.GetArtifact_SignedURL(id, "0", LiveLogName, time.Minute)
		if err != nil {
			return false
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(u.String())
		if err != nil {
			return false
		}
		resp.Body.Close()
		liveURL = resp.Header.Get("Location")
		return resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(liveURL, ls.URL+"/log/")
	})
	resp, err := http.Get(liveURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "streamed-before-end") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("live log ended before the task's output: %v\n%s", err, seen.String())
		}
		seen.WriteString(line)
	}
	if e.status(id).Runs[0].State != "running" {
		t.Fatal("task already finished: the log was not read live")
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rest), "after-release") || !strings.Contains(string(rest), "Result: completed") {
		t.Errorf("live log did not follow the task to its end:\n%s", rest)
	}
	expectRun(t, e.waitRun(id, 0), "completed", "completed")
}

func TestArtifactExpiryOutsideTaskIsMalformed(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	marker := filepath.Join(e.dir, "ran")
	id := e.createTask(map[string]any{
		"command":    [][]string{{"/bin/sh", "-c", "touch " + marker}},
		"maxRunTime": 60,
		"artifacts": []map[string]any{{"type": "file", "path": "x", "name": "public/x",
			"expires": time.Now().Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)}},
	})
	expectRun(t, e.waitRun(id, 0), "exception", "malformed-payload")
	if !strings.Contains(e.artifactContent(id, 0, BackingLogName), "payload.artifacts[0].expires") {
		t.Error("log does not name the artifact's expiry")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a malformed task's command ran")
	}
}
