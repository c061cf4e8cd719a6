package runner

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// TestControlAPIOverNamedPipe drives the control API through the client
// over a named pipe, as `runner status` and `runner quarantine` do on
// Windows.
func TestControlAPIOverNamedPipe(t *testing.T) {
	dir := testTempDir(t)
	pipe := fmt.Sprintf(`\\.\pipe\labrunner-runner-test-%d`, time.Now().UnixNano())
	yml := fmt.Sprintf(`rootURL: http://127.0.0.1:9
credentials: {clientId: c, accessToken: t}
taskQueueId: lab/win11
workerGroup: lab
workerId: win-01
stateDir: '%s'
tasksDir: '%s'
taskUser: service
runner:
  controlSocket: '%s'
  quarantine: {mirrorToQueue: false}
`, filepath.Join(dir, "state"), filepath.Join(dir, "tasks"), pipe)
	ac, rc, err := Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ac.TasksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(ac, rc, Options{Probes: Probes{QueueTime: func(context.Context) (time.Time, error) { return time.Now(), nil }}})
	if err != nil {
		t.Fatal(err)
	}
	r.boot()
	// The boot checks, as Run does: the machine is idle once each passed.
	r.runCheckDir(context.Background())
	r.runBuiltins(context.Background(), true, false)
	r.mu.Lock()
	r.booting = false
	r.commit()
	r.mu.Unlock()
	ln, err := platform.ListenControl(rc.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.controlHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx := context.Background()
	c := NewClient(rc.ControlSocket)
	s, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != PhaseIdle || s.Machine.WorkerID != "win-01" || !s.Service.Running {
		t.Errorf("status %+v", s)
	}
	if s, err = c.Quarantine(ctx, QuarantineRequest{Reason: "bad disk", For: "2h"}); err != nil {
		t.Fatal(err)
	}
	if s.State != PhaseQuarantined || s.Quarantine == nil || s.Quarantine.Reason != "bad disk" || s.Quarantine.Until == nil {
		t.Errorf("after quarantine: %s %+v", s.State, s.Quarantine)
	}
	if _, err := c.Quarantine(ctx, QuarantineRequest{Reason: " "}); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Errorf("empty reason: %v", err)
	}
	if s, err = c.Unquarantine(ctx); err != nil || s.Quarantine != nil {
		t.Errorf("after unquarantine: %+v %v", s.Quarantine, err)
	}
	if s, err = c.Drain(ctx); err != nil || (s.State != PhaseDraining && s.State != PhaseDrained) {
		t.Errorf("after drain: %s %v", s.State, err)
	}
	rep, err := c.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := findCheckWin(rep.Checks, "disk"); d.Name == "" || d.CheckedAt.IsZero() {
		t.Errorf("check report has no disk check: %+v", rep.Checks)
	}
	m, err := c.Metrics(ctx)
	if err != nil || (!strings.Contains(m, `labrunner_runner_state{state="draining"} 1`) && !strings.Contains(m, `labrunner_runner_state{state="drained"} 1`)) {
		t.Errorf("metrics: %v\n%s", err, m)
	}
	// The state file says the same.
	st, err := NewStateStore(rc.StateFile).Load()
	if err != nil || !st.Draining {
		t.Errorf("state file: draining %v, %v", st.Draining, err)
	}
}

func findCheckWin(cs []CheckStatus, name string) CheckStatus {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return CheckStatus{}
}
