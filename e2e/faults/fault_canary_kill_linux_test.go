package faults

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// A runner killed with SIGKILL while it runs a black hole's canary runs
// the same canary again when it is started again, and reports nothing for
// the run cut short. Killed a second time during it, the next start
// reports the canary exception/worker-shutdown with the log that run left
// on the disk, ending with a line saying the runner restarted; the
// provisioner renews the quarantine, the next canary passes and releases
// the machine, and no process of the killed runs is left.
func TestFaultRunnerKilledMidCanary(t *testing.T) {
	t.Parallel()
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second}, 6)
	queueID := "faults/canary"
	p := startProvisionerWith(t, q, queueID, 6, func(c *provisioner.Config) { c.DetectInterval = 200 * time.Millisecond })
	ctx := context.Background()
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang")
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `n=$(( $(cat ` + dir + `/attempts 2>/dev/null || echo 0) + 1 )); echo $n > ` + dir + `/attempts; echo "canary attempt $n"; ` +
		`if [ -e ` + hang + ` ]; then touch ` + dir + `/running-$n; exec sleep 600; fi; echo "canary passes"`
	canary, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 600})
	if _, err := p.admin.PutPool(ctx, "lab", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: queueID, MinCapacity: 1, MaxCapacity: 1,
		BlackHole: &client.BlackHolePolicy{QuarantineFor: "30s", Canary: canary}}); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, provisionedRunner(p.proxy.URL(), p.enrollToken(t)))
	id := waitRegistered(t, r)

	// The detector's quarantine, ending soon: its canary is sent at once.
	if _, err := p.admin.Quarantine(ctx, id, "black hole: fault test", time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	store := p.srv.Store()
	if err := store.SaveWatch(ctx, provisioner.Watch{MachineID: id, AutoUntil: p.machine(t, id).QuarantinedUntil}); err != nil {
		t.Fatal(err)
	}
	running := func(n string) string {
		t.Helper()
		waitFile(t, 60*time.Second, filepath.Join(dir, "running-"+n))
		var task string
		waitFor(t, 60*time.Second, "the canary in the runner's status", func() bool {
			s := r.status()
			if s == nil || len(s.CurrentTasks) != 1 || s.CurrentTasks[0].Kind != runner.SourceCanary {
				return false
			}
			task = s.CurrentTasks[0].TaskID
			return true
		})
		return task
	}
	task := running("1")

	r.kill()
	killed := time.Now()
	r.start()
	if again := running("2"); again != task {
		t.Fatalf("after the restart canary %s runs, want %s again", again, task)
	}
	rerun := time.Since(killed)
	if _, err := store.LatestCanary(ctx, id, ""); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("a canary report after the first kill: %v", err)
	}
	if s := r.status(); s == nil || len(s.RecentTasks) == 0 || s.RecentTasks[0].TaskID != task || !strings.Contains(s.RecentTasks[0].Resolution, "runs once more") {
		t.Errorf("the runner's record of the canary cut short: %+v", s)
	}

	if err := os.Remove(hang); err != nil {
		t.Fatal(err)
	}
	r.kill()
	back := time.Now()
	r.start()
	var cut provisioner.RunRecord
	waitFor(t, 60*time.Second, "the canary killed twice reported", func() bool {
		var err error
		cut, err = store.LatestCanary(ctx, id, task)
		return err == nil
	})
	reported := time.Since(back)
	if cut.Result != client.ResultException || cut.Reason != "worker-shutdown" {
		t.Errorf("the canary killed twice reported %s %s, want exception worker-shutdown", cut.Result, cut.Reason)
	}
	for _, w := range []string{"Task: " + task, "canary attempt 2\n", "Runner restarted at ", "it is reported exception/worker-shutdown"} {
		if !strings.Contains(cut.Log, w) {
			t.Errorf("its log lacks %q:\n%s", w, cut.Log)
		}
	}
	if strings.Contains(cut.Log, "canary attempt 1") {
		t.Errorf("its log holds the first run's output:\n%s", cut.Log)
	}
	waitFor(t, 60*time.Second, "the machine released by its next canary", func() bool {
		m := p.machine(t, id)
		return m.QuarantinedUntil == nil && m.LastCanary != nil && m.LastCanary.Result == client.ResultCompleted
	})
	released := time.Since(back)
	if last := p.machine(t, id).LastCanary; last.TaskID == task || !strings.Contains(last.Log, "canary attempt 3\ncanary passes\n") {
		t.Errorf("the passing canary %s reported with log:\n%s", last.TaskID, last.Log)
	}
	waitFor(t, 30*time.Second, "the killed runs' processes gone", func() bool { return len(taskProcesses(task)) == 0 })
	figure(t, "canary killed: the same canary ran again %s after the kill, nothing reported; killed again: reported exception/worker-shutdown with %d bytes of its log %s after the restart; released by the next canary %s after it",
		rerun.Round(time.Millisecond), len(cut.Log), reported.Round(time.Millisecond), released.Round(time.Millisecond))
}
