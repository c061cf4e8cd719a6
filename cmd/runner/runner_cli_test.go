//go:build unix

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/runner"
)

// mainArgsEnv, when set, makes the test binary run main() with these
// arguments (JSON), so tests can run the runner as a process and kill it.
const mainArgsEnv = "LABRUNNER_RUNNER_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(mainArgsEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			panic(err)
		}
		os.Args = append([]string{"runner"}, args...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliEnv is a devstack and a runner configuration file.
type cliEnv struct {
	t         *testing.T
	dir       string
	config    string
	taskQueue string
	queue     *tcqueue.Queue
	rebootLog string
	stateFile string
}

// startProcess runs `runner run` as a child process (the test binary).
func (e *cliEnv) startProcess() *exec.Cmd {
	e.t.Helper()
	args, _ := json.Marshal([]string{"run", "--config", e.config})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(args))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// newCLIEnv starts a devstack and writes a configuration; reboot, if set,
// replaces the runner's reboot policy.
func newCLIEnv(t *testing.T, reboot map[string]any) *cliEnv {
	s, err := devstack.Start(context.Background(), devstack.Options{
		Queue:  devqueue.Config{PollWait: 300 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	dir, err := os.MkdirTemp("", "lrc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := &cliEnv{t: t, dir: dir, rebootLog: filepath.Join(dir, "reboots.log")}
	wt := "wt-" + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(wt) > 38 {
		wt = wt[:38]
	}
	e.taskQueue = "lab/" + wt
	checks := filepath.Join(dir, "checks.d")
	if err := os.MkdirAll(checks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checks, "10-ok.sh"), []byte("#!/bin/sh\necho fine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.stateFile = filepath.Join(dir, "state", "runner-state.json")
	cfg := map[string]any{
		"rootURL":      s.RootURL,
		"credentials":  map[string]string{"clientId": s.Credentials.ClientID, "accessToken": s.Credentials.AccessToken},
		"taskQueueId":  e.taskQueue,
		"workerGroup":  "lab",
		"workerId":     "machine-1",
		"stateDir":     filepath.Join(dir, "state"),
		"tasksDir":     filepath.Join(dir, "tasks"),
		"taskUser":     "service", // the CLI is under test, not task users
		"idlePollWait": "10ms",
		"runner": map[string]any{
			"drainGrace": "2s",
			"checks":     map[string]any{"dir": checks, "diskFreeMinMB": 1, "memFreeMinMB": 1},
			"reboot":     map[string]any{"afterTasks": 5, "maxUptime": "8760h"},
		},
	}
	rb := cfg["runner"].(map[string]any)
	if reboot != nil {
		rb["reboot"] = reboot
	}
	rb["reboot"].(map[string]any)["command"] = []string{"/bin/sh", "-c", `echo "$LABRUNNER_REBOOT_REASON" >> ` + e.rebootLog}
	b, _ := json.Marshal(cfg)
	e.config = filepath.Join(dir, "runner.yml")
	if err := os.WriteFile(e.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	creds := s.Credentials
	e.queue = tcqueue.New(&creds, s.RootURL)
	return e
}

func (e *cliEnv) createTask(script string) string {
	e.t.Helper()
	id := slugid.Nice()
	now := time.Now().UTC()
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 120})
	if _, err := e.queue.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: e.taskQueue,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  payload,
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "t", Owner: "t@example.com", Source: "https://example.com"},
	}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// status runs `runner status --json`.
func (e *cliEnv) status() (int, *runner.Status) {
	code, out, _ := execute(context.Background(), "status", "--json", "--config", e.config)
	var s runner.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return code, nil
	}
	return code, &s
}

// waitStatus polls `runner status --json` until cond holds.
func (e *cliEnv) waitStatus(what string, cond func(*runner.Status) bool) *runner.Status {
	e.t.Helper()
	var last *runner.Status
	waitUntil(e.t, what, func() bool {
		code, s := e.status()
		last = s
		return code == 0 && s != nil && cond(s)
	})
	return last
}

// cli runs a runner command and fails the test unless it exits 0.
func (e *cliEnv) cli(args ...string) string {
	e.t.Helper()
	code, out, errOut := execute(context.Background(), append(args, "--config", e.config)...)
	if code != 0 {
		e.t.Fatalf("runner %v exited %d:\n%s%s", args, code, out, errOut)
	}
	return out
}

func TestCLIStatusAndControlAgainstDevstack(t *testing.T) {
	e := newCLIEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, _, stderr := execute(ctx, "run", "--config", e.config); code != 0 {
			t.Errorf("runner run exited %d:\n%s", code, stderr)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	e.waitStatus("runner idle", func(s *runner.Status) bool { return s.State == runner.PhaseIdle && s.LastClaimAt != nil })

	gate := filepath.Join(e.dir, "go")
	id := e.createTask("echo working; while [ ! -f " + gate + " ]; do sleep 0.05; done")
	e.waitStatus("task running", func(s *runner.Status) bool { return len(s.CurrentTasks) == 1 })
	out := e.cli("status")
	t.Logf("runner status:\n%s", out)
	for _, want := range []string{
		"runner", "dev", "service", "running (pid", "machine", "worker", "lab/machine-1 in " + e.taskQueue,
		"state", "running", "current task", id + " run 0", "elapsed", "/api/queue/v1/task/" + id + "/runs/0/artifacts/public/logs/live.log",
		"quarantine", "last claim", "ago", "reboot policy", "0 tasks since boot (reboot after 5)", "max 8760h",
		"next reboot", "after 5 more tasks", "boot loop", "0 of 3 reboots",
		"disk", "MB free", ">= 1 MB free", "memory", "clock", "from the queue", "leftovers", "uptime", "check:10-ok.sh", "exit 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := e.waitStatus("task finished", func(s *runner.Status) bool { return len(s.RecentTasks) == 1 })
	if r := s.RecentTasks[0]; r.TaskID != id || r.Resolution != "completed" || r.ExitCode != 0 || r.DurationSeconds <= 0 {
		t.Errorf("recent task %+v", r)
	}
	if s.Reboot.TasksSinceBoot != 1 || !strings.HasPrefix(s.Reboot.Next, "after 4 more tasks, or in ") {
		t.Errorf("reboot progress %+v", s.Reboot)
	}

	out = e.cli("quarantine", "--reason", "GPU fan broken", "--for", "1h")
	if !strings.Contains(out, "manual, until") || !strings.Contains(out, "GPU fan broken") {
		t.Errorf("quarantine output:\n%s", out)
	}
	pid, wt, _ := strings.Cut(e.taskQueue, "/")
	waitUntil(t, "quarantine on the queue", func() bool {
		w, err := e.queue.GetWorker(pid, wt, "lab", "machine-1")
		return err == nil && time.Time(w.QuarantineUntil).After(time.Now().Add(50*time.Minute))
	})
	if code, _, stderr := execute(context.Background(), "quarantine", "--config", e.config); code == 0 || !strings.Contains(stderr+"", "reason") {
		t.Errorf("quarantine without --reason: exit %d %q", code, stderr)
	}
	out = e.cli("unquarantine")
	if !regexpLine(out, "quarantine", "no") {
		t.Errorf("after unquarantine:\n%s", out)
	}
	if out = e.cli("drain"); !regexpLine(out, "state", "draining") && !regexpLine(out, "state", "drained") {
		t.Errorf("after drain:\n%s", out)
	}
	if out = e.cli("resume"); !regexpLine(out, "state", "idle") {
		t.Errorf("after resume:\n%s", out)
	}
	var rep runner.CheckReport
	checkJSON := e.cli("check", "--json")
	if err := json.Unmarshal([]byte(checkJSON), &rep); err != nil || rep.Verdict != "ok" || !rep.Healthy || len(rep.Checks) < 6 {
		t.Errorf("check --json: %+v %v", rep, err)
	}
	if !strings.Contains(checkJSON, `">= `) || strings.Contains(checkJSON, `\u003e`) {
		t.Errorf("check --json should show thresholds as typed (\">= N MB free\"), got:\n%s", checkJSON)
	}
	if _, out, _ = execute(context.Background(), "version"); !strings.HasPrefix(out, "runner dev") {
		t.Errorf("version: %q", out)
	}
	e.cli("reboot", "--after-task")
	waitUntil(t, "reboot command ran", func() bool {
		b, _ := os.ReadFile(e.rebootLog)
		return strings.Contains(string(b), "requested by an operator")
	})

	stop()
	code, out, _ := execute(context.Background(), "status", "--config", e.config)
	if code != 3 || !strings.Contains(out, "NOT RUNNING") || !strings.Contains(out, "1 task in all") || !strings.Contains(out, id) {
		t.Errorf("status of a stopped runner: exit %d\n%s", code, out)
	}
}

// regexpLine reports whether a status line starts with key and then value.
func regexpLine(out, key, value string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == key && f[1] == value {
			return true
		}
	}
	return false
}

// TestStateSurvivesKillDash9 runs the runner as a process, kills it with
// SIGKILL and checks that the state file is whole and is picked up again.
func TestStateSurvivesKillDash9(t *testing.T) {
	e := newCLIEnv(t, nil)
	start := e.startProcess
	p := start()
	e.waitStatus("runner idle", func(s *runner.Status) bool { return s.State == runner.PhaseIdle })
	id := e.createTask("true")
	e.waitStatus("task done", func(s *runner.Status) bool { return len(s.RecentTasks) == 1 })
	// A second task is running when the runner is killed: its process
	// outlives the runner.
	pidFile := filepath.Join(e.dir, "pid")
	long := e.createTask("echo printed-before-the-kill; sleep 300 & echo $! > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; wait")
	e.waitStatus("second task running", func(s *runner.Status) bool { return len(s.CurrentTasks) == 1 })
	waitUntil(t, "task's process started", func() bool { _, err := os.Stat(pidFile); return err == nil })
	raw, _ := os.ReadFile(pidFile)
	var taskPid int
	for _, c := range strings.TrimSpace(string(raw)) {
		taskPid = taskPid*10 + int(c-'0')
	}
	t.Cleanup(func() { _ = syscall.Kill(taskPid, syscall.SIGKILL) })
	e.cli("drain")
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()

	st, err := runner.NewStateStore(e.stateFile).Load()
	if err != nil {
		t.Fatalf("state file after kill -9: %v", err)
	}
	if !st.Draining || st.TasksTotal != 1 || len(st.RecentTasks) != 1 || st.RecentTasks[0].TaskID != id ||
		len(st.CurrentTasks) != 1 || st.CurrentTasks[0].TaskID != long {
		t.Errorf("state after kill -9: draining %v tasks %d recent %+v current %+v", st.Draining, st.TasksTotal, st.RecentTasks, st.CurrentTasks)
	}
	code, out, _ := execute(context.Background(), "status", "--config", e.config)
	if code != 3 || !strings.Contains(out, "did not stop cleanly") {
		t.Errorf("status after kill -9: exit %d\n%s", code, out)
	}

	p = start()
	s := e.waitStatus("runner back", func(s *runner.Status) bool { return s.State != runner.PhaseBooting })
	if s.State != runner.PhaseDrained || s.Counters.TasksTotal != 1 || len(s.RecentTasks) != 2 ||
		s.RecentTasks[0].TaskID != long || s.RecentTasks[0].Resolution != "interrupted (runner restarted)" {
		t.Errorf("after restart: state %s tasks %d recent %+v; want the drain, the task and the interrupted one remembered", s.State, s.Counters.TasksTotal, s.RecentTasks)
	}
	// The agent's journal resolves the interrupted run through the
	// runner's claim gate, and the runner kills what the run left behind.
	waitUntil(t, "interrupted run resolved", func() bool {
		st, err := e.queue.Status(long)
		return err == nil && len(st.Status.Runs) > 0 && st.Status.Runs[0].ReasonResolved == "worker-shutdown"
	})
	waitUntil(t, "the killed runner's task process gone", func() bool { return syscall.Kill(taskPid, 0) != nil || zombie(taskPid) })
	// The run's log, as far as it got, is uploaded with a closing line, and
	// its files are removed.
	for _, name := range []string{"public/logs/live_backing.log", "public/logs/live.log"} {
		log := e.artifact(long, 0, name)
		if !strings.Contains(log, "printed-before-the-kill") || !strings.Contains(log, "Worker restarted at ") {
			t.Errorf("%s of the interrupted run lacks the task's output or the restart line:\n%s", name, log)
		}
	}
	// The run is resolved just before its files go.
	waitUntil(t, "the interrupted run's task directory and log removed", func() bool {
		left, _ := filepath.Glob(filepath.Join(e.dir, "tasks", "task_*"))
		return len(left) == 0
	})
	if _, s = e.status(); s.Counters.LeftoversKilled < 1 {
		t.Errorf("leftoversKilled %d, want the interrupted task's process counted", s.Counters.LeftoversKilled)
	}
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("runner after SIGTERM: %v", err)
	}
	if st, err := runner.NewStateStore(e.stateFile).Load(); err != nil || st.Phase != runner.PhaseStopped {
		t.Errorf("state after SIGTERM: %s %v", st.Phase, err)
	}
}

// artifact downloads a run's artifact (following links and redirects) and
// undoes its gzip encoding.
func (e *cliEnv) artifact(taskID string, runID int, name string) string {
	e.t.Helper()
	u, err := e.queue.GetArtifact_SignedURL(taskID, strconv.Itoa(runID), name, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Get(u.String())
	if err != nil {
		e.t.Fatalf("get artifact %s: %v", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("get artifact %s: %s %v", name, resp.Status, err)
	}
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			e.t.Fatalf("gunzip %s: %v", name, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			e.t.Fatalf("gunzip %s: %v", name, err)
		}
	}
	return string(b)
}

// TestBootLoopAcrossProcessRestarts reboots after every task; each "reboot"
// (a harmless command) is followed by a restart of the runner process, as
// the machine's boot would do. The third reboot within the window is
// refused and the machine quarantined, and the queue told.
func TestBootLoopAcrossProcessRestarts(t *testing.T) {
	e := newCLIEnv(t, map[string]any{"afterEveryTask": true, "bootLoopMax": 2, "bootLoopWindow": "1h"})
	for boot := 1; boot <= 3; boot++ {
		p := e.startProcess()
		s := e.waitStatus("runner up", func(s *runner.Status) bool { return s.State != runner.PhaseBooting })
		if boot > 1 && (s.Reboot.Last == nil || !strings.Contains(s.Reboot.Last.Reason, "after every task")) {
			t.Errorf("boot %d does not report the reboot before it: %+v", boot, s.Reboot.Last)
		}
		id := e.createTask("true")
		if boot < 3 {
			e.waitStatus("reboot issued", func(s *runner.Status) bool { return s.Reboot.Issued != nil })
			waitUntil(t, "reboot command", func() bool {
				b, _ := os.ReadFile(e.rebootLog)
				return strings.Count(string(b), "\n") == boot && strings.Contains(string(b), id)
			})
		} else {
			s = e.waitStatus("boot-loop quarantine", func(s *runner.Status) bool { return s.Quarantine != nil })
			if s.Quarantine.Source != runner.SourceBootLoop || s.State != runner.PhaseQuarantined || s.Reboot.RecentReboots != 2 {
				t.Errorf("boot 3: state %s quarantine %+v recent reboots %d", s.State, s.Quarantine, s.Reboot.RecentReboots)
			}
			if b, _ := os.ReadFile(e.rebootLog); strings.Count(string(b), "\n") != 2 {
				t.Errorf("reboot command ran again despite the boot loop:\n%s", b)
			}
			pid, wt, _ := strings.Cut(e.taskQueue, "/")
			waitUntil(t, "quarantine on the queue", func() bool {
				w, err := e.queue.GetWorker(pid, wt, "lab", "machine-1")
				return err == nil && time.Time(w.QuarantineUntil).After(time.Now())
			})
		}
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Errorf("boot %d: runner exit: %v", boot, err)
		}
	}
}
