package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// perTaskAgent is an agent in per-task mode laid out as a runner is: the
// tasks directory inside the private state directory, beside the state
// file; a configuration file in a private directory of its own.
func perTaskAgent(t *testing.T) (a *Agent, stateFile, configFile string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("per-task users are made with useradd and need root; run the tests as root (CI does)")
	}
	dir := testTempDir(t)
	stateDir := filepath.Join(dir, "state")
	confDir := filepath.Join(dir, "etc")
	for _, d := range []string{stateDir, confDir} {
		if _, err := platform.MakePrivateDir(d); err != nil {
			t.Fatal(err)
		}
	}
	stateFile = filepath.Join(stateDir, "state.json")
	configFile = filepath.Join(confDir, "runner.yml")
	for _, f := range []string{stateFile, configFile} {
		if err := os.WriteFile(f, []byte("accessToken: secret-token\n"), platform.PrivateFileMode); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(Config{TasksDir: filepath.Join(stateDir, "tasks"), Version: "test", Logger: quietLogger(), TaskUser: platform.TaskUserPerTask})
	if err != nil {
		t.Fatal(err)
	}
	return a, stateFile, configFile
}

// runScript runs a /bin/sh script as a local task and returns its result
// and log.
func runScript(t *testing.T, a *Agent, script string) (RunResult, string) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 60})
	if err != nil {
		t.Fatal(err)
	}
	run, err := NewLocalRun(payload, "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res := a.RunOne(context.Background(), run, &out)
	return res, out.String()
}

var taskUserLine = regexp.MustCompile(`Running as task user (task_[0-9a-f]+) \(home (\S+)\)`)

// taskUserOf is the task user the log names; the test fails if there is
// none, or if it still exists.
func taskUserOf(t *testing.T, log string) string {
	t.Helper()
	m := taskUserLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the log names no task user:\n%s", log)
	}
	var unknown user.UnknownUserError
	if _, err := user.Lookup(m[1]); !errors.As(err, &unknown) {
		t.Errorf("task user %s still exists after the task: %v", m[1], err)
	}
	if _, err := os.Stat(m[2]); !os.IsNotExist(err) {
		t.Errorf("home %s of task user %s still exists after the task: %v", m[2], m[1], err)
	}
	return m[1]
}

// A per-task task cannot read the runner's state file nor its
// configuration: the read fails with a permission error and so does the
// task.
func TestPerTaskUserCannotReadRunnerFiles(t *testing.T) {
	a, stateFile, configFile := perTaskAgent(t)
	for _, f := range []string{stateFile, configFile} {
		res, log := runScript(t, a, "cat "+f)
		if res.Resolution.State != StateFailed {
			t.Errorf("cat %s: resolution %s, want failed:\n%s", f, res.Resolution, log)
		}
		if !strings.Contains(log, f+": Permission denied") || strings.Contains(log, "secret-token") {
			t.Errorf("cat %s: the log shows no permission error, or the secret:\n%s", f, log)
		}
		taskUserOf(t, log)
	}
}

// A per-task task writes in its own directory and temporary directory
// only; the background process it leaves in a session of its own is
// killed, and its user is gone, when the task ends.
func TestPerTaskUserIsConfinedAndCleanedUp(t *testing.T) {
	a, stateFile, _ := perTaskAgent(t)
	stateDir := filepath.Dir(stateFile)
	script := `set -u
id -un
for f in "$TASK_WORKDIR/out" "$TMPDIR/tmp" "$HOME/home"; do touch "$f" && echo "wrote $f"; done
for f in "` + stateDir + `/planted" "` + stateFile + `" "$TASK_WORKDIR/../planted" /etc/planted /usr/local/bin/planted; do
  if (echo x >> "$f") 2>/dev/null; then echo "ESCAPED $f"; else echo "refused $f"; fi
done
setsid nohup sh -c 'echo $$ > "$TASK_WORKDIR/bg.pid"; exec sleep 1000.4711' >/dev/null 2>&1 &
while [ ! -s "$TASK_WORKDIR/bg.pid" ]; do sleep 0.05; done
echo started`
	res, log := runScript(t, a, script)
	if res.Resolution.State != StateCompleted {
		t.Fatalf("resolution %s:\n%s", res.Resolution, log)
	}
	name := taskUserOf(t, log)
	if !strings.Contains(log, "\n"+name+"\n") {
		t.Errorf("the commands did not run as %s:\n%s", name, log)
	}
	if n := strings.Count(log, "\nwrote "); n != 3 {
		t.Errorf("the task wrote %d of its task, temporary and home directories, want 3:\n%s", n, log)
	}
	if strings.Contains(log, "\nESCAPED ") || strings.Count(log, "\nrefused ") != 5 {
		t.Errorf("the task wrote outside its directories:\n%s", log)
	}
	for _, p := range []string{filepath.Join(stateDir, "planted"), "/etc/planted", "/usr/local/bin/planted"} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("%s was created by the task", p)
		}
	}
	if !strings.Contains(log, "\nstarted\n") || !strings.Contains(log, "] Killed 1 process task user "+name) {
		t.Errorf("the log does not show the background process killed:\n%s", log)
	}
	if pids := processesWithArg(t, "1000.4711"); len(pids) > 0 {
		t.Errorf("the task's background sleep survives the task: pids %v", pids)
	}
}

// processesWithArg lists the processes with arg on their command line.
func processesWithArg(t *testing.T, arg string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg && alive(atoi(e.Name())) {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}

// A per-task agent removes, before its first claim, the task user a
// crashed agent on the same tasks directory left running, and kills its
// processes; another agent's task user is left alone.
func TestPerTaskAgentRemovesLeftTaskUsersAtStart(t *testing.T) {
	a, _, _ := perTaskAgent(t)
	left, err := platform.NewTaskUser(a.cfg.TasksDir, platform.TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := platform.NewTaskUser(a.cfg.TasksDir+"-another-runner", platform.TaskUserIDs{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, u := range []*platform.TaskUser{left, other} {
			if _, err := user.Lookup(u.Name); err == nil {
				_, _ = u.KillProcesses()
				_ = u.Remove()
			}
		}
	}()
	sleeper := exec.Command("/bin/sleep", "1000.4712")
	if err := left.RunAs(sleeper); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait()
	src := &firstClaimSource{claimed: make(chan struct{})}
	a.cfg.Source = src
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-src.claimed:
	case <-time.After(time.Minute):
		t.Fatal("the agent did not start claiming")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var unknown user.UnknownUserError
	if _, err := user.Lookup(left.Name); !errors.As(err, &unknown) {
		t.Errorf("the task user %s left by a crash is still there: %v", left.Name, err)
	}
	if pids := processesWithArg(t, "1000.4712"); len(pids) > 0 {
		t.Errorf("its process survives: %v", pids)
	}
	if _, err := user.Lookup(other.Name); err != nil {
		t.Errorf("another runner's task user %s was removed: %v", other.Name, err)
	}
}
