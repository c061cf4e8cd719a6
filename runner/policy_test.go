//go:build unix

package runner

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRebootAfterNTasks(t *testing.T) {
	e := newEnv(t, map[string]any{"reboot": map[string]any{"afterTasks": 2}})
	rn := e.start(Options{})
	for i := range 2 {
		if res := e.waitResolved(e.createTask("true")); res != "completed" {
			t.Fatalf("task %d: %s", i, res)
		}
	}
	s := e.waitStatus(rn, "reboot issued", func(s *Status) bool { return s.State == PhaseRebooting && s.Reboot.Issued != nil })
	if got := e.waitReboots(1); len(got) != 1 || !strings.Contains(got[0], "2 tasks since boot") {
		t.Errorf("reboot command calls %q, want one for 2 tasks since boot", got)
	}
	if s.Reboot.TasksSinceBoot != 0 || s.Counters.TasksTotal != 2 {
		t.Errorf("tasksSinceBoot %d (want 0 after the reboot), tasksTotal %d (want 2)", s.Reboot.TasksSinceBoot, s.Counters.TasksTotal)
	}
	// While rebooting nothing is claimed: a new task stays pending even
	// after the runner ran a full round of checks.
	e.waitNoClaim(rn, "no claim in flight", func(*Status) bool { return true })
	id := e.createTask("true")
	if _, err := rn.client.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.taskState(id); st != "pending" {
		t.Errorf("task submitted while rebooting is %s, want pending", st)
	}
}

func TestRebootOnExitCode(t *testing.T) {
	e := newEnv(t, map[string]any{"reboot": map[string]any{"onExitCodes": []int{42}}})
	rn := e.start(Options{})
	if res := e.waitResolved(e.createTask("exit 3")); res != "failed" {
		t.Fatalf("exit 3: %s", res)
	}
	id := e.createTask("exit 42")
	if res := e.waitResolved(id); res != "failed" {
		t.Fatalf("exit 42: %s", res)
	}
	s := e.waitStatus(rn, "reboot issued", func(s *Status) bool { return s.Reboot.Issued != nil })
	if got := e.waitReboots(1); len(got) != 1 || !strings.Contains(got[0], id) || !strings.Contains(got[0], "exited with 42") {
		t.Errorf("reboot command calls %q, want one naming task %s and exit 42", got, id)
	}
	if len(s.RecentTasks) != 2 || s.RecentTasks[0].ExitCode != 42 || s.RecentTasks[1].ExitCode != 3 {
		t.Errorf("recent tasks %+v, want exit 42 then 3, newest first", s.RecentTasks)
	}
}

// TestMaxUptimeRebootsThenBootLoopQuarantines restarts the runner on the
// same state file as a reboot would: the uptime stays past the maximum, so
// every boot asks for a reboot, and the third is refused by the guard.
func TestMaxUptimeRebootsThenBootLoopQuarantines(t *testing.T) {
	e := newEnv(t, map[string]any{
		"reboot":     map[string]any{"maxUptime": "24h", "bootLoopMax": 2, "bootLoopWindow": "1h"},
		"quarantine": map[string]any{"bootLoopFor": "3h"},
	})
	up := &fixedUptime{}
	up.v.Store(int64(48 * time.Hour))
	for boot := 1; boot <= 2; boot++ {
		rn := e.start(Options{Probes: Probes{Uptime: up.probe}})
		s := e.waitStatus(rn, "reboot issued", func(s *Status) bool { return s.Reboot.Issued != nil })
		e.waitReboots(boot)
		if !strings.Contains(s.Reboot.Issued.Reason, "past reboot.maxUptime 24h") {
			t.Errorf("boot %d: reboot reason %q", boot, s.Reboot.Issued.Reason)
		}
		if boot == 2 && (s.Reboot.Last == nil || !strings.Contains(s.Reboot.Last.Reason, "maxUptime")) {
			t.Errorf("boot 2 does not report the reboot before it: %+v", s.Reboot.Last)
		}
		rn.stop(t)
	}
	rn := e.start(Options{Probes: Probes{Uptime: up.probe}})
	s := e.waitStatus(rn, "boot-loop quarantine", func(s *Status) bool { return s.Quarantine != nil })
	if s.Quarantine.Source != SourceBootLoop || s.State != PhaseQuarantined || s.Quarantine.Until == nil {
		t.Fatalf("quarantine %+v state %s, want boot-loop with an expiry", s.Quarantine, s.State)
	}
	if d := time.Until(*s.Quarantine.Until); d < 2*time.Hour || d > 3*time.Hour {
		t.Errorf("boot-loop quarantine lasts %s, want 3h", d)
	}
	if got := e.reboots(); len(got) != 2 {
		t.Errorf("reboot command ran %d times, want 2 (the third refused)", len(got))
	}
	waitUntil(t, "quarantine mirrored to the queue", func() bool { return e.workerQuarantinedUntil().After(time.Now().Add(time.Hour)) }, nil)
	// Lifting it by hand forgets the history, so the next reboot goes through.
	if _, err := rn.client.Unquarantine(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitReboots(3)
	waitUntil(t, "quarantine lifted on the queue", func() bool { return !e.workerQuarantinedUntil().After(time.Now()) }, nil)
}

// TestQuarantineAfterInfraFailuresAndRelease makes every task an
// internal-error (its directory cannot be made), then repairs the machine.
func TestQuarantineAfterInfraFailuresAndRelease(t *testing.T) {
	e := newEnv(t, map[string]any{"quarantine": map[string]any{"afterInfraFailures": 2, "failuresFor": "2s"}})
	rn := e.start(Options{})
	// The agent makes tasksDir as it starts: break it only after that,
	// once its first claim is in flight.
	e.waitStatus(rn, "a claim in flight", func(s *Status) bool { return s.Polling })
	tasks := e.ac.TasksDir
	if err := os.RemoveAll(tasks); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tasks, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if res := e.waitResolved(e.createTask("true")); res != "exception/internal-error" {
			t.Fatalf("task %d: %s, want exception/internal-error", i, res)
		}
	}
	s := e.waitStatus(rn, "quarantined after 2 failures", func(s *Status) bool { return s.Quarantine != nil })
	if s.Quarantine.Source != SourceFailures || !strings.Contains(s.Quarantine.Reason, "2 infrastructure failures in a row") {
		t.Fatalf("quarantine %+v", s.Quarantine)
	}
	waitUntil(t, "quarantine mirrored", func() bool { return e.workerQuarantinedUntil().After(time.Now()) }, nil)
	if err := os.Remove(tasks); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tasks, 0o755); err != nil {
		t.Fatal(err)
	}
	s = e.waitStatus(rn, "quarantine expired", func(s *Status) bool { return s.Quarantine == nil && s.State == PhaseIdle })
	if s.Counters.InfraFailuresInARow != 0 {
		t.Errorf("infra failures %d after release, want 0", s.Counters.InfraFailuresInARow)
	}
	if res := e.waitResolved(e.createTask("true")); res != "completed" {
		t.Fatalf("task after release: %s", res)
	}
}

func TestDiskThresholdTripsAndClears(t *testing.T) {
	e := newEnv(t, map[string]any{"checks": map[string]any{"diskFreeMinMB": 1000, "tripAfter": 2, "clearAfter": 2, "interval": "1h"}})
	var free atomic.Uint64
	free.Store(5000 * mb)
	rn := e.start(Options{Probes: Probes{DiskFree: func(string) (uint64, error) { return free.Load(), nil }}})
	ctx := context.Background()
	// The gate before each claim samples the checks too, so a sample of
	// ours may not be the only one: assert the hysteresis law on the
	// counters (trip at the 2nd failure in a row, clear at the 2nd pass).
	free.Store(10 * mb)
	rep, err := rn.client.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := findCheck(rep.Checks, "disk"); d.OK || d.Tripped != (d.FailuresInARow >= 2) || rep.Healthy == d.Tripped {
		t.Fatalf("after a low sample: %+v healthy=%v; want failing, tripped only from the 2nd failure in a row", d, rep.Healthy)
	}
	rep, _ = rn.client.Check(ctx)
	if d := findCheck(rep.Checks, "disk"); !d.Tripped || rep.Healthy || !strings.Contains(d.Value, "10 MB free") {
		t.Fatalf("after two low samples: %+v; want tripped", d)
	}
	s, _ := rn.client.Status(ctx)
	if s.State != PhaseQuarantined || s.Quarantine == nil || s.Quarantine.Source != SourceHealth || !strings.Contains(s.Quarantine.Reason, "disk") {
		t.Fatalf("state %s quarantine %+v; want quarantined by health naming disk", s.State, s.Quarantine)
	}
	e.waitNoClaim(rn, "no claim in flight", func(*Status) bool { return true })
	id := e.createTask("true")
	rn.client.Check(ctx) // a full round with the gate closed; tripped still
	if st := e.taskState(id); st != "pending" {
		t.Errorf("task claimed while the disk check was tripped: %s", st)
	}
	free.Store(5000 * mb)
	rep, _ = rn.client.Check(ctx)
	if d := findCheck(rep.Checks, "disk"); !d.OK || d.Tripped != (d.PassesInARow < 2) {
		t.Fatalf("after a good sample: %+v; want passing, still tripped until the 2nd pass in a row", d)
	}
	rep, _ = rn.client.Check(ctx)
	if d := findCheck(rep.Checks, "disk"); d.Tripped || !rep.Healthy {
		t.Fatalf("after two good samples: %+v; want cleared", d)
	}
	if res := e.waitResolved(id); res != "completed" {
		t.Errorf("task after the disk cleared: %s", res)
	}
}

func findCheck(cs []CheckStatus, name string) CheckStatus {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return CheckStatus{}
}

func TestLeftoverProcessKilled(t *testing.T) {
	e := newEnv(t, nil)
	rn := e.start(Options{})
	pidFile := filepath.Join(e.dir, "pid")
	// setsid takes the sleep out of the task's process group, so killing
	// the task's tree does not reach it.
	// The pid is written from inside the new session, and the task waits
	// for it, so the task's own end cannot kill the process first.
	id := e.createTask(`setsid sh -c 'echo $$ > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `; exec sleep 300' </dev/null >/dev/null 2>&1 &
		while [ ! -f ` + pidFile + ` ]; do sleep 0.02; done`)
	if res := e.waitResolved(id); res != "completed" {
		t.Fatalf("task: %s", res)
	}
	e.waitStatus(rn, "task ended", func(s *Status) bool { return len(s.CurrentTasks) == 0 })
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(raw)) {
		pid = pid*10 + int(c-'0')
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	rep, err := rn.client.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "leftover process gone", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) }, nil)
	s, _ := rn.client.Status(context.Background())
	if s.Counters.LeftoversKilled < 1 {
		t.Errorf("leftoversKilled %d, want at least 1 (check: %+v)", s.Counters.LeftoversKilled, findCheck(rep.Checks, "leftovers"))
	}
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestDrainDuringTaskLetsItFinish(t *testing.T) {
	e := newEnv(t, nil)
	rn := e.start(Options{})
	gate := filepath.Join(e.dir, "go")
	id := e.createTask("while [ ! -f " + gate + " ]; do sleep 0.05; done")
	e.waitStatus(rn, "task running", func(s *Status) bool { return len(s.CurrentTasks) == 1 && s.CurrentTasks[0].TaskID == id })
	s, err := rn.client.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.State != PhaseDraining || !s.Draining {
		t.Errorf("after drain: state %s draining %v", s.State, s.Draining)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := e.waitResolved(id); res != "completed" {
		t.Fatalf("drained task: %s, want completed", res)
	}
	// Once the task is done and no claim is in flight, the state says
	// drained, as the provisioner does, with who asked for it.
	s = e.waitNoClaim(rn, "drained", func(s *Status) bool { return len(s.CurrentTasks) == 0 && s.State == PhaseDrained })
	var text strings.Builder
	if err := FormatStatus(&text, s); err != nil || !strings.Contains(text.String(), "drained by runner drain on this machine") {
		t.Errorf("status text after the drain (%v):\n%s", err, text.String())
	}
	next := e.createTask("true")
	rn.client.Check(context.Background())
	if st := e.taskState(next); st != "pending" {
		t.Errorf("task claimed while drained: %s", st)
	}
	if _, err := rn.client.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := e.waitResolved(next); res != "completed" {
		t.Errorf("task after resume: %s", res)
	}
}

func TestStopDrainsThenResolvesWorkerShutdown(t *testing.T) {
	e := newEnv(t, map[string]any{"drainGrace": "500ms"})
	rn := e.start(Options{})
	id := e.createTask("sleep 300")
	e.waitStatus(rn, "task running", func(s *Status) bool { return len(s.CurrentTasks) == 1 })
	rn.stop(t)
	if res := e.waitResolved(id); res != "exception/worker-shutdown" {
		t.Errorf("task running at stop: %s, want exception/worker-shutdown", res)
	}
	st, err := NewStateStore(e.rc.StateFile).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseStopped || len(st.RecentTasks) != 1 || st.RecentTasks[0].Resolution != "exception/worker-shutdown" {
		t.Errorf("state after stop: phase %s recent %+v", st.Phase, st.RecentTasks)
	}
}

func TestWatchdogRestartsAgentLoop(t *testing.T) {
	e := newEnv(t, map[string]any{"watchdog": map[string]any{"timeout": "1s"}})
	rn := e.start(Options{})
	e.waitStatus(rn, "first claim", func(s *Status) bool { return s.LastClaimAt != nil })
	// The queue goes away: claims fail, the machine itself is fine.
	_ = e.stack.Close()
	s := e.waitStatus(rn, "watchdog restart", func(s *Status) bool { return s.Counters.WatchdogRestarts >= 1 })
	if s.State != PhaseIdle {
		t.Errorf("state %s after a watchdog restart, want idle", s.State)
	}
}

// TestRebootRequestStopsTaskAfterGrace: a plain reboot request gives the
// running task drainGrace, then resolves it worker-shutdown and reboots;
// the agent loop lives on for the next boot's sake.
func TestRebootRequestStopsTaskAfterGrace(t *testing.T) {
	e := newEnv(t, map[string]any{"drainGrace": "300ms"})
	rn := e.start(Options{})
	id := e.createTask("sleep 300")
	e.waitStatus(rn, "task running", func(s *Status) bool { return len(s.CurrentTasks) == 1 })
	s, err := rn.client.Reboot(context.Background(), RebootRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != PhaseDraining || s.Reboot.Pending == nil || s.Reboot.Pending.StopTasksAt.IsZero() {
		t.Errorf("after the request: state %s pending %+v", s.State, s.Reboot.Pending)
	}
	if res := e.waitResolved(id); res != "exception/worker-shutdown" {
		t.Errorf("task: %s, want exception/worker-shutdown", res)
	}
	if got := e.waitReboots(1); got[0] != "requested by an operator" {
		t.Errorf("reboot reason %q", got[0])
	}
	m, err := rn.client.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`labrunner_runner_tasks_total{resolution="exception/worker-shutdown"} 1`, "labrunner_runner_reboots_total 1", `labrunner_runner_state{state="rebooting"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestPolicyRebootWaitsForResume: a drained machine is not rebooted by the
// policy until it is resumed, and then before it claims again.
func TestPolicyRebootWaitsForResume(t *testing.T) {
	e := newEnv(t, map[string]any{"reboot": map[string]any{"afterEveryTask": true}})
	rn := e.start(Options{})
	gate := filepath.Join(e.dir, "go")
	id := e.createTask("while [ ! -f " + gate + " ]; do sleep 0.05; done")
	e.waitStatus(rn, "task running", func(s *Status) bool { return len(s.CurrentTasks) == 1 })
	if _, err := rn.client.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(gate, nil, 0o644)
	e.waitResolved(id)
	s := e.waitStatus(rn, "reboot pending while drained", func(s *Status) bool { return s.Reboot.Pending != nil && len(s.CurrentTasks) == 0 })
	rn.client.Check(context.Background()) // a round of the gate's work
	if s.State != PhaseDrained || len(e.reboots()) != 0 {
		t.Errorf("drained machine: state %s, reboots %q; want drained and no reboot", s.State, e.reboots())
	}
	if _, err := rn.client.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.waitReboots(1); !strings.Contains(got[0], "after every task") {
		t.Errorf("reboot reason %q", got[0])
	}
}

// TestMetricsListenServesOnlyMetrics: the optional TCP listener must not
// expose the control API.
func TestMetricsListenServesOnlyMetrics(t *testing.T) {
	e := newEnv(t, nil)
	r, err := New(e.ac, e.rc, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.metricsOnlyHandler())
	defer srv.Close()
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/v1/status": http.StatusNotFound} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(srv.URL+"/v1/drain", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /v1/drain on the metrics listener succeeded")
	}
}
