//go:build unix

package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// launch runs a runner until the test ends (or stop) without waiting for
// its boot checks, which may never pass.
func (e *testEnv) launch(opts Options) *running {
	e.t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	r, err := New(e.ac, e.rc, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{r: r, client: NewClient(e.rc.ControlSocket), cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx) }()
	e.t.Cleanup(func() { rn.stop(e.t) })
	return rn
}

// countingDisk is a DiskFree probe with a settable value that counts the
// samples taken.
type countingDisk struct {
	free    atomic.Uint64
	samples atomic.Int64
}

func (d *countingDisk) probe(string) (uint64, error) {
	d.samples.Add(1)
	return d.free.Load(), nil
}

// assertNothingClaimed checks that the machine has not called claimWork
// since its last claim before this start (lastClaim, zero if none) and
// that every task is still pending.
func (e *testEnv) assertNothingClaimed(rn *running, ids []string, what string, lastClaim time.Time) *Status {
	e.t.Helper()
	s, err := rn.client.Status(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	claimed := s.LastClaimAt != nil && !s.LastClaimAt.Equal(lastClaim)
	if s.Polling || claimed {
		e.t.Errorf("%s: claimWork was called (polling %v, last claim %v, before the start %v)", what, s.Polling, s.LastClaimAt, lastClaim)
	}
	for _, id := range ids {
		if st := e.taskState(id); st != "pending" {
			e.t.Errorf("%s: task %s is %s, want pending", what, id, st)
		}
	}
	return s
}

// TestNoClaimUntilEveryCheckPassedOnce: a machine whose disk is short from
// the start claims nothing however many samples fail (the hysteresis is for
// a machine that was healthy), says what it waits for, and starts work at
// the first passing sample; a restart waits again.
func TestNoClaimUntilEveryCheckPassedOnce(t *testing.T) {
	e := newEnv(t, map[string]any{"checks": map[string]any{"diskFreeMinMB": 1000, "interval": "1s"}})
	disk := &countingDisk{}
	disk.free.Store(10 * mb)
	var ids []string
	for range 3 {
		ids = append(ids, e.createTask("true"))
	}
	rn := e.launch(Options{Probes: Probes{DiskFree: disk.probe}})
	// tripAfter is 3: twice as many failing samples, several intervals.
	waitUntil(t, "6 disk samples", func() bool { return disk.samples.Load() >= 6 }, nil)
	s := e.assertNothingClaimed(rn, ids, "disk short from the start", time.Time{})
	if s.State != PhaseBooting || !slices.Equal(s.PendingChecks, []string{"disk"}) || s.Quarantine != nil {
		t.Errorf("state %s pending %v quarantine %+v; want booting, waiting for disk, not quarantined", s.State, s.PendingChecks, s.Quarantine)
	}
	d := findCheck(s.Checks, "disk")
	if d.OK || d.PassedSinceStart || d.Tripped || d.FailuresInARow < 3 || !strings.Contains(d.Value, "10 MB free") {
		t.Errorf("disk check %+v; want failing, never passed, not tripped, with its value", d)
	}
	var out strings.Builder
	if err := FormatStatus(&out, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("status while waiting:\n%s", out.String())
	for _, want := range []string{"waiting for first pass of: disk", "10 MB free", "PENDING"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
	hb := rn.r.snapshot()
	if hb.State != client.StateStarting || !hasHealth(hb.Health, "first-pass", false, "disk") {
		t.Errorf("heartbeat %+v; want starting with a failing first-pass result naming disk", hb)
	}
	if rep, err := rn.client.Check(context.Background()); err != nil || rep.Healthy {
		t.Errorf("runner check: %+v, %v; want unhealthy", rep, err)
	}

	disk.free.Store(5000 * mb)
	for _, id := range ids {
		if res := e.waitResolved(id); res != "completed" {
			t.Errorf("task %s after the disk passed: %s", id, res)
		}
	}
	s = e.waitStatus(rn, "idle", func(s *Status) bool { return s.State == PhaseIdle })
	if len(s.PendingChecks) != 0 || !findCheck(s.Checks, "disk").PassedSinceStart {
		t.Errorf("pending %v disk %+v after the first pass", s.PendingChecks, findCheck(s.Checks, "disk"))
	}
	if hb := rn.r.snapshot(); hb.State != client.StateIdle || hasHealth(hb.Health, "first-pass", false, "") {
		t.Errorf("heartbeat after the first pass %+v", hb)
	}

	// A restart (a reboot is one) is a new start: the disk must pass again.
	rn.stop(t)
	before, err := NewStateStore(e.rc.StateFile).Load()
	if err != nil || before.LastClaimAt.IsZero() {
		t.Fatalf("state after the stop: last claim %v, %v", before.LastClaimAt, err)
	}
	disk.free.Store(10 * mb)
	disk.samples.Store(0)
	next := e.createTask("true")
	rn = e.launch(Options{Probes: Probes{DiskFree: disk.probe}})
	waitUntil(t, "6 disk samples after the restart", func() bool { return disk.samples.Load() >= 6 }, nil)
	s = e.assertNothingClaimed(rn, []string{next}, "disk short after a restart", before.LastClaimAt)
	if s.State != PhaseBooting || !slices.Equal(s.PendingChecks, []string{"disk"}) {
		t.Errorf("after a restart with the disk short: state %s, pending %v", s.State, s.PendingChecks)
	}
	disk.free.Store(5000 * mb)
	if res := e.waitResolved(next); res != "completed" {
		t.Errorf("task after the disk passed again: %s", res)
	}
}

// TestNoClaimUntilChecksDirPassedOnce: a checks-directory check failing
// from the start (RETRY until HALT, and the reboot fails) keeps the gate
// closed; the directory runs again every interval, and its first pass
// opens the gate.
func TestNoClaimUntilChecksDirPassedOnce(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(t.TempDir(), "runs")
	failing := "echo x >> " + runs + "; echo no GPU visible; exit 1"
	writeCheck(t, dir, "10-gpu", failing)
	e := newEnv(t, map[string]any{
		"checks": map[string]any{"dir": dir, "interval": "1s", "tries": 1, "retryWait": "10ms"},
		"reboot": map[string]any{"command": []string{"/bin/sh", "-c", "exit 1"}, "bootLoopMax": 1000},
	})
	id := e.createTask("true")
	rn := e.launch(Options{})
	// Three runs are two intervals; a claimed task ends the wait early.
	waitUntil(t, "the check ran 3 times", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "x") >= 3 || e.taskState(id) != "pending"
	}, nil)
	s := e.assertNothingClaimed(rn, []string{id}, "check failing from the start", time.Time{})
	if s.State == PhaseIdle || !slices.Contains(s.PendingChecks, "check:10-gpu") {
		t.Errorf("state %s pending %v; want not idle, waiting for check:10-gpu", s.State, s.PendingChecks)
	}
	if c := findCheck(s.Checks, "check:10-gpu"); c.PassedSinceStart || !strings.Contains(c.Message, "no GPU visible") {
		t.Errorf("check %+v; want never passed, with its last output", c)
	}
	writeCheck(t, dir, "10-gpu", "exit 0")
	if res := e.waitResolved(id); res != "completed" {
		t.Errorf("task after the check passed: %s", res)
	}
}

func hasHealth(hs []client.HealthResult, name string, ok bool, msg string) bool {
	for _, h := range hs {
		if h.Name == name && h.OK == ok && strings.Contains(h.Message, msg) {
			return true
		}
	}
	return false
}
