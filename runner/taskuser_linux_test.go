package runner

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/platform"
)

// A runner whose configuration does not name taskUser runs tasks as
// per-task users and says so in its status; a task it runs from the
// queue cannot read the runner's state file nor its configuration: the
// task fails.
func TestPerTaskRunnerKeepsItsFilesFromTasks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-task users are made with useradd and need root; run the tests as root (CI does)")
	}
	e := newPerTaskEnv(t)
	if e.ac.TaskUser != "per-task" {
		t.Fatalf("taskUser without a setting = %q, want per-task", e.ac.TaskUser)
	}
	var logs testsvc.LogBuffer
	rn := e.start(Options{Logger: logs.Logger(slog.LevelInfo)})
	s := e.waitStatus(rn, "status after start", func(*Status) bool { return true })
	if s.TaskUser != "per-task" {
		t.Errorf("status taskUser = %q, want per-task", s.TaskUser)
	}
	if k := platform.TaskUserKill(); s.TaskUserKill != k.Method || k.Method == "" {
		t.Errorf("status taskUserKill = %q, want this machine's way, %+v", s.TaskUserKill, k)
	}
	for _, f := range []string{e.rc.StateFile, e.configPath} {
		if got := e.waitResolved(e.createTask("cat " + f)); got != "failed" {
			t.Errorf("a task reading %s ended %s, want failed (permission denied)", f, got)
		}
	}
	if strings.Contains(logs.String(), "taskUser: service") {
		t.Errorf("the runner warned about service mode in per-task mode:\n%s", logs.String())
	}
}

// Tasks run as the runner's account only when taskUser: service is set:
// the status says so and the runner warns at start.
func TestServiceModeIsShownAndWarned(t *testing.T) {
	e := newEnv(t, nil)
	var logs testsvc.LogBuffer
	rn := e.start(Options{Logger: logs.Logger(slog.LevelInfo)})
	s := e.waitStatus(rn, "status after start", func(*Status) bool { return true })
	if s.TaskUser != "service" {
		t.Errorf("status taskUser = %q, want service", s.TaskUser)
	}
	waitUntil(t, "the service-mode warning", func() bool {
		return strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "taskUser: service")
	}, logs.String)
	var out strings.Builder
	if err := FormatStatus(&out, s); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\ntask user +service \(tasks run as the runner's own account: no isolation\)\n`).MatchString(out.String()) {
		t.Errorf("runner status does not show the task-user mode:\n%s", out.String())
	}
}

// newPerTaskEnv is newEnv with the taskUser setting left out (the default,
// per-task).
func newPerTaskEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newEnv(t, nil)
	b, err := os.ReadFile(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "taskUser")
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(e.configPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.ac, e.rc, err = Load(e.configPath); err != nil {
		t.Fatal(err)
	}
	return e
}

// A task user left on the machine with a process running (as the agent
// leaves one whose processes survived the kill) is found by the check
// between tasks: its processes are killed, the account removed, and the
// check says so; the runner goes on taking tasks.
func TestBetweenTaskCheckRemovesTaskUsersLeftBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("per-task users are made with useradd and need root; run the tests as root (CI does)")
	}
	e := newPerTaskEnv(t)
	rn := e.start(Options{})
	checkSays := func(want string) func(*Status) bool {
		return func(s *Status) bool {
			for _, c := range s.Checks {
				if c.Name == "task users" && strings.Contains(c.Value, want) {
					return true
				}
			}
			return false
		}
	}
	// The agent is polling (the check ran between tasks): from now on only
	// the check removes accounts. The account and its process are made
	// while no check runs, so that the check finds both.
	e.waitStatus(rn, "the task users check", checkSays("none left"))
	rn.r.checkMu.Lock()
	u, err := platform.NewTaskUser(e.ac.TasksDir, platform.TaskUserIDs{})
	if err != nil {
		rn.r.checkMu.Unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = u.KillProcesses(); _ = u.Remove() })
	sleep := exec.Command("sleep", "300")
	sleep.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = u.RunAs(sleep)
	if err == nil {
		err = sleep.Start()
	}
	rn.r.checkMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleep.Wait() }()
	s := e.waitStatus(rn, "the task users check", checkSays("1 left behind, removed"))
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Errorf("the left task user's process still runs")
	}
	if _, err := user.Lookup(u.Name); err == nil {
		t.Errorf("task user %s is still on the machine", u.Name)
	}
	if s.Quarantine != nil {
		t.Errorf("quarantined: %+v", s.Quarantine)
	}
	if got := e.waitResolved(e.createTask("exit 0")); got != "completed" {
		t.Errorf("a task after the check ended %s", got)
	}
}
