//go:build linux

package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

// TestCanaryInterruptedByAStopRunsAgainOnce: a black hole's canary is
// running when its runner is stopped (drain grace over: the agent stops
// it, worker-shutdown). It is not reported: the next start runs the same
// canary again. Stopped a second time, it is reported
// exception/worker-shutdown with the tail of its log, and the provisioner
// renews the quarantine; the next canary completes, its log comes with
// its report, and the machine is released.
func TestCanaryInterruptedByAStopRunsAgainOnce(t *testing.T) {
	dir := testTempDir(t)
	hang := filepath.Join(dir, "hang")
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each attempt says its number; while the hang file is there it runs
	// until stopped, else it passes.
	script := `n=$(( $(cat ` + dir + `/attempts 2>/dev/null || echo 0) + 1 )); echo $n > ` + dir + `/attempts; echo "canary attempt $n"; ` +
		`if [ -e ` + hang + ` ]; then touch ` + dir + `/running-$n; exec sleep 600; fi; echo "canary passes"`
	canary, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 600})
	e := newProvEnvWith(t, map[string]any{"runner": map[string]any{"drainGrace": "1s"}},
		func(c *provisioner.Config) { c.DetectInterval = 100 * time.Millisecond })
	ctx := e.prov.ctx()
	if _, err := e.prov.admin.PutPool(ctx, "hello", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: e.taskQueue, MinCapacity: 1, MaxCapacity: 3,
		BlackHole: &client.BlackHolePolicy{QuarantineFor: "30s", Canary: canary}}); err != nil {
		t.Fatal(err)
	}
	rn, id := e.startLinked()
	store := e.prov.srv.Store()

	// The detector's quarantine, ending soon: its canary is sent at once.
	if _, err := e.prov.admin.Quarantine(ctx, id, "black hole: test", time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveWatch(ctx, provisioner.Watch{MachineID: id, AutoUntil: e.prov.machine(id).QuarantinedUntil}); err != nil {
		t.Fatal(err)
	}
	running := func(rn *running, n string) string {
		t.Helper()
		waitUntil(t, "canary attempt "+n+" running", func() bool { _, err := os.Stat(filepath.Join(dir, "running-"+n)); return err == nil }, nil)
		s := e.waitStatus(rn, "the canary in status", func(s *Status) bool { return len(s.CurrentTasks) == 1 })
		if c := s.CurrentTasks[0]; c.Kind != SourceCanary {
			t.Fatalf("running %+v, want the canary", c)
		}
		return s.CurrentTasks[0].TaskID
	}
	canaryReports := func() []provisioner.RunRecord {
		runs, err := store.RunReports(ctx, "hello", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(runs, func(r provisioner.RunRecord) bool { return r.Kind != client.KindCanary })
	}
	task := running(rn, "1")

	// Stopped once: kept to run again, not reported.
	rn.stop(t)
	st, err := NewStateStore(e.rc.StateFile).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Canary == nil || st.Canary.TaskID != task || st.Canary.Interrupted == nil || st.Canary.LogFile != "" {
		t.Fatalf("state after a stop during the canary: kept %+v, want %s, interrupted", st.Canary, task)
	}
	if r := st.RecentTasks[0]; r.TaskID != task || !strings.Contains(r.Resolution, "runs once more") {
		t.Errorf("recorded %+v, want the interrupted canary, to run once more", r)
	}
	rn = e.start(Options{})
	if again := running(rn, "2"); again != task {
		t.Fatalf("after the restart canary %s runs, want %s again", again, task)
	}
	if reps := canaryReports(); len(reps) != 0 {
		t.Fatalf("an interrupted canary was reported: %+v", reps)
	}
	if m := e.prov.machine(id); !strings.HasPrefix(m.QuarantineReason, "canary running (task "+task) {
		t.Fatalf("the provisioner judged the machine meanwhile: %q", m.QuarantineReason)
	}

	// Stopped again: reported, with its log; the next canary passes.
	if err := os.Remove(hang); err != nil {
		t.Fatal(err)
	}
	rn.stop(t)
	rn = e.start(Options{})
	var cut provisioner.RunRecord
	waitUntil(t, "the twice interrupted canary reported", func() bool {
		cut, err = store.LatestCanary(ctx, id, task)
		return err == nil
	}, nil)
	if cut.Result != client.ResultException || cut.Reason != "worker-shutdown" {
		t.Errorf("twice interrupted canary reported %s %s, want exception worker-shutdown", cut.Result, cut.Reason)
	}
	for _, w := range []string{"canary attempt 2\n", "Result: exception/worker-shutdown", "interrupted again, it is reported as it ended"} {
		if !strings.Contains(cut.Log, w) {
			t.Errorf("its log lacks %q:\n%s", w, cut.Log)
		}
	}
	if strings.Contains(cut.Log, "canary attempt 1") {
		t.Errorf("its log holds the first run's output too:\n%s", cut.Log)
	}
	waitUntil(t, "the machine released by its next canary", func() bool {
		m := e.prov.machine(id)
		return m.QuarantinedUntil == nil && m.LastCanary != nil && m.LastCanary.Result == client.ResultCompleted
	}, func() string { b, _ := json.MarshalIndent(e.prov.machine(id), "", " "); return string(b) })
	last := e.prov.machine(id).LastCanary
	if last.TaskID == task || !strings.Contains(last.Log, "canary attempt 3\ncanary passes\n") || !strings.Contains(last.Log, "Result: completed") {
		t.Errorf("the passing canary %s reported with log:\n%s", last.TaskID, last.Log)
	}
	if reps := canaryReports(); len(reps) != 2 {
		t.Errorf("%d canary reports, want 2 (the twice interrupted one, the passing one): %+v", len(reps), reps)
	}
	e.waitStatus(rn, "the quarantine lifted on the runner", func(s *Status) bool { return s.Quarantine == nil })
}
