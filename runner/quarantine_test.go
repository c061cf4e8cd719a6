//go:build unix

package runner

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// TestHealthQuarantineKeepsSinceAndLogsOncePerChange: while the same
// checks stay tripped, samples with new values update the reason but
// neither move `since` nor log "quarantined" again; another check
// tripping is a change (logged, since kept: the machine has been
// quarantined all along); after a release a new trip starts afresh.
func TestHealthQuarantineKeepsSinceAndLogsOncePerChange(t *testing.T) {
	e := newEnv(t, map[string]any{"checks": map[string]any{"diskFreeMinMB": 1000, "memFreeMinMB": 1000, "tripAfter": 2, "clearAfter": 1, "interval": "1s"}})
	disk := &countingDisk{}
	disk.free.Store(5000 * mb)
	var memFree atomic.Uint64
	memFree.Store(5000 * mb)
	// A short disk's free space moves a little at every sample, as a real
	// one does.
	probe := func(p string) (uint64, error) {
		v, _ := disk.probe(p)
		if v < 1000*mb {
			v += uint64(disk.samples.Load()) * mb
		}
		return v, nil
	}
	logs := &testsvc.LogBuffer{}
	rn := e.start(Options{Logger: logs.Logger(slog.LevelInfo), Probes: Probes{DiskFree: probe, MemAvailable: func() (uint64, error) { return memFree.Load(), nil }}})
	ctx := context.Background()

	disk.free.Store(10 * mb)
	s := e.waitStatus(rn, "quarantined for the disk", func(s *Status) bool { return s.Quarantine != nil })
	if s.Quarantine.Source != SourceHealth || !strings.Contains(s.Quarantine.Reason, "disk") {
		t.Fatalf("quarantine %+v", s.Quarantine)
	}
	since, reason := s.Quarantine.Since, s.Quarantine.Reason
	n := disk.samples.Load()
	waitUntil(t, "4 more samples", func() bool { return disk.samples.Load() >= n+4 }, nil)
	s, _ = rn.client.Status(ctx)
	if s.Quarantine == nil || !s.Quarantine.Since.Equal(since) {
		t.Errorf("since moved while the disk stayed tripped: %v, then %+v", since, s.Quarantine)
	}
	if s.Quarantine != nil && s.Quarantine.Reason == reason {
		t.Errorf("reason %q did not follow the latest sample", reason)
	}
	if got := logs.CountMessage("quarantined"); got != 1 {
		t.Errorf(`"quarantined" logged %d times for one trip, want 1`, got)
	}

	memFree.Store(10 * mb)
	s = e.waitStatus(rn, "memory tripped too", func(s *Status) bool {
		return s.Quarantine != nil && strings.Contains(s.Quarantine.Reason, "memory")
	})
	if !s.Quarantine.Since.Equal(since) {
		t.Errorf("since moved from %v to %v when memory tripped too; the machine was quarantined all along", since, s.Quarantine.Since)
	}
	n = disk.samples.Load()
	waitUntil(t, "3 more samples", func() bool { return disk.samples.Load() >= n+3 }, nil)
	if got := logs.CountMessage("quarantined"); got != 2 {
		t.Errorf(`"quarantined" logged %d times for two changes, want 2`, got)
	}

	disk.free.Store(5000 * mb)
	memFree.Store(5000 * mb)
	e.waitStatus(rn, "released", func(s *Status) bool { return s.Quarantine == nil })
	// A sample between the two stores above may have seen one check
	// cleared and not the other, which is a change too: count from here.
	released := logs.CountMessage("quarantined")
	disk.free.Store(10 * mb)
	s = e.waitStatus(rn, "quarantined again", func(s *Status) bool { return s.Quarantine != nil })
	if !s.Quarantine.Since.After(since) {
		t.Errorf("a new trip after a release kept the old since %v", s.Quarantine.Since)
	}
	n = disk.samples.Load()
	waitUntil(t, "3 more samples", func() bool { return disk.samples.Load() >= n+3 }, nil)
	if got := logs.CountMessage("quarantined") - released; got != 1 {
		t.Errorf(`"quarantined" logged %d times for a new trip after a release, want 1`, got)
	}
}

// TestCheckQuarantineKeepsSinceAcrossReruns: the checks directory runs
// again every interval while its EXIT holds the machine; the same answer
// neither moves `since` nor logs again.
func TestCheckQuarantineKeepsSinceAcrossReruns(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(t.TempDir(), "runs")
	writeCheck(t, dir, "10-gpu", "exit 0")
	e := newEnv(t, map[string]any{"checks": map[string]any{"dir": dir, "interval": "1s"}})
	logs := &testsvc.LogBuffer{}
	rn := e.start(Options{Logger: logs.Logger(slog.LevelInfo)})
	writeCheck(t, dir, "10-gpu", "echo x >> "+runs+"; echo no GPU found; exit 3")
	if _, err := rn.client.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.waitStatus(rn, "quarantined by the check", func(s *Status) bool { return s.Quarantine != nil })
	since := s.Quarantine.Since
	waitUntil(t, "the check ran 3 more times", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "x") >= 4
	}, nil)
	s, _ = rn.client.Status(context.Background())
	if s.Quarantine == nil || s.Quarantine.Source != SourceCheck || !s.Quarantine.Since.Equal(since) {
		t.Errorf("quarantine %+v; want the check's, since %v", s.Quarantine, since)
	}
	for _, msg := range []string{"quarantined", "check asked to stop (EXIT)"} {
		if got := logs.CountMessage(msg); got != 1 {
			t.Errorf("%q logged %d times for one EXIT, want 1", msg, got)
		}
	}
	writeCheck(t, dir, "10-gpu", "exit 0")
	e.waitStatus(rn, "released", func(s *Status) bool { return s.Quarantine == nil && s.State == PhaseIdle })
}
