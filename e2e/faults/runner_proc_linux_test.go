package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/runner"
)

// runnerProc is a `runner run` process with its directories; it can be
// killed and started again on the same configuration and state.
type runnerProc struct {
	t        *testing.T
	dir      string
	cfgPath  string
	logPath  string
	stateDir string
	tasksDir string
	tmpDir   string // the process's TMPDIR
	socket   string
	cmd      *exec.Cmd
	done     chan error
}

// staticRunner is the configuration of a runner with the queue's root
// credentials and no provisioner.
func staticRunner(q *queueEnv, queueID, workerID string, capacity int) map[string]any {
	return map[string]any{
		"rootURL":      q.proxy.URL(),
		"credentials":  map[string]string{"clientId": q.creds.ClientID, "accessToken": q.creds.AccessToken},
		"taskQueueId":  queueID,
		"workerGroup":  "faults",
		"workerId":     workerID,
		"capacity":     capacity,
		"idlePollWait": "100ms",
		"runner":       map[string]any{},
	}
}

// provisionedRunner is the configuration of a runner that gets its pool
// and credentials from the provisioner at provURL.
func provisionedRunner(provURL, enrollToken string) map[string]any {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	noIMDS := "http://" + ln.Addr().String() // closed: not an EC2 instance
	_ = ln.Close()
	return map[string]any{
		"idlePollWait": "100ms",
		"runner": map[string]any{
			"provisioner": map[string]any{
				"url": provURL, "enrollmentToken": enrollToken,
				"heartbeatInterval": "1s", "pollWait": "5s", "imdsEndpoint": noIMDS,
			},
		},
	}
}

// newRunner writes cfg (with the directories, a harmless reboot command
// and checks any machine passes added) and starts the runner.
func newRunner(t *testing.T, cfg map[string]any) *runnerProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "lrf-")
	if err != nil {
		t.Fatal(err)
	}
	r := &runnerProc{t: t, dir: dir, cfgPath: filepath.Join(dir, "runner.yml"), logPath: filepath.Join(dir, "runner.log"),
		stateDir: filepath.Join(dir, "state"), tasksDir: filepath.Join(dir, "tasks"), tmpDir: filepath.Join(dir, "tmp")}
	r.socket = filepath.Join(r.stateDir, "control.sock")
	cfg["stateDir"], cfg["tasksDir"] = r.stateDir, r.tasksDir
	if _, set := cfg["taskUser"]; !set {
		// The faults are the runner's; task users have tests of their own
		// (agent/taskuser_linux_test.go, runner/taskuser_linux_test.go).
		cfg["taskUser"] = "service"
	}
	rc, _ := cfg["runner"].(map[string]any)
	if rc == nil {
		rc = map[string]any{}
		cfg["runner"] = rc
	}
	rc["reboot"] = map[string]any{"command": []string{"/bin/true"}}
	rc["checks"] = map[string]any{"diskFreeMinMB": 1, "memFreeMinMB": 1}
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(r.cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd != nil && r.cmd.ProcessState == nil {
			r.stop()
		}
		killTaskProcesses(r.tasksDir)
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("runner log (last lines of %s):\n%s", r.logPath, strings.Join(lines, "\n"))
			return // keep the directory for a look
		}
		_ = os.RemoveAll(dir)
	})
	r.start()
	return r
}

// start runs the runner binary on the configuration; its logs are
// appended to logPath across restarts.
func (r *runnerProc) start() {
	r.t.Helper()
	if err := os.MkdirAll(r.tmpDir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(binDir, "runner"), "run", "--config", r.cfgPath, "-v")
	cmd.Env = append(os.Environ(), "TMPDIR="+r.tmpDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		r.t.Fatalf("start the runner: %v", err)
	}
	_ = logf.Close()
	r.cmd, r.done = cmd, make(chan error, 1)
	go func() { r.done <- cmd.Wait() }()
}

// kill ends the runner with SIGKILL, as a crash would: its tasks, in
// process groups of their own, live on.
func (r *runnerProc) kill() {
	r.t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// stop asks the runner to stop (SIGTERM) and kills it if it has not
// within a minute.
func (r *runnerProc) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
	}
}

// status asks the running runner for its status; nil while it does not
// answer.
func (r *runnerProc) status() *runner.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := runner.NewClient(r.socket).Status(ctx)
	if err != nil {
		return nil
	}
	return s
}
