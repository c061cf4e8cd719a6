package provisioner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// buildbotCounts stands in for the bridge: pending requests per builder.
type buildbotCounts map[string]int64

func (b buildbotCounts) PendingRequests(_ context.Context, builders []string) (int64, error) {
	var n int64
	for _, name := range builders {
		c, ok := b[name]
		if !ok {
			return 0, errors.New("unknown builder " + name)
		}
		n += c
	}
	return n, nil
}

func TestSourceDemandAsksEachPoolsSource(t *testing.T) {
	d := &sourceDemand{tc: &taskcluster{}, buildbot: buildbotCounts{"linux": 3, "mac": 4}}
	bb := client.Pool{PoolID: "bb", Spec: client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux", "mac"}}}
	if n, err := d.Pending(context.Background(), bb); err != nil || n != 7 {
		t.Fatalf("buildbot pending = %d, %v; want 7", n, err)
	}
	bb.Spec.Builders = []string{"win"}
	if _, err := d.Pending(context.Background(), bb); err == nil {
		t.Fatal("an error of the bridge was swallowed")
	}
	tc := client.Pool{PoolID: "tc", Spec: client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: "a/b"}}
	if _, err := d.Pending(context.Background(), tc); err == nil {
		t.Fatal("no rootUrl configured, yet pendingTasks succeeded")
	}
	none := &sourceDemand{tc: &taskcluster{}}
	if _, err := none.Pending(context.Background(), bb); err == nil {
		t.Fatal("a buildbot pool without BuildbotDemand gave a count")
	}
}

func TestSizingFiguresAndRecommendation(t *testing.T) {
	e := newEnv(t, sqliteURL(t), nil)
	ctx := e.ctx()
	spec := tcPool("p/win", 1, 10, 0, "windows")
	spec.TargetWaitSeconds = 600
	e.pool("win", spec)
	reg, mc := e.enroll(winFacts("w1"))
	// Ten tasks of 10, 20, … 100 minutes each, back to back.
	for i := 1; i <= 10; i++ {
		if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "t" + string(rune('a'+i))}}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Duration(10*i) * time.Minute)
	}
	if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
		t.Fatal(err)
	}
	e.demand.set("win", 12)
	sz, err := e.admin.Sizing(ctx, "win")
	if err != nil {
		t.Fatal(err)
	}
	if sz.Pending != 12 || sz.Idle != 1 || sz.Running != 0 || sz.Assigned != 1 || sz.TasksInWindow != 10 {
		t.Fatalf("figures %+v", sz)
	}
	if sz.MedianTaskSeconds != 3000 || sz.P90TaskSeconds != 5400 || sz.Target != 10 {
		t.Fatalf("median %v p90 %v target %d; want 3000, 5400, 10", sz.MedianTaskSeconds, sz.P90TaskSeconds, sz.Target)
	}
	// Drain: 12 pending × 3000 s ÷ 1 machine.
	if sz.DrainSeconds != 36000 {
		t.Fatalf("drain %v, want 36000", sz.DrainSeconds)
	}
	// Steady: 10 tasks / 24 h × mean 3300 s = 0.38; backlog 12 × 3000 / 600 = 60 → 61.
	if sz.RecommendedCapacity != 61 {
		t.Fatalf("recommended %d, want 61; reasoning %q", sz.RecommendedCapacity, sz.Reasoning)
	}
	if !slices.ContainsFunc(sz.Reasoning, func(s string) bool { return strings.Contains(s, "exceed maxCapacity 10") }) {
		t.Fatalf("reasoning does not warn about maxCapacity: %q", sz.Reasoning)
	}
	// One machine is "1 machine", never "1 machines".
	for _, want := range []string{"12 tasks are pending and 0 running; 1 machine is assigned", "With 1 machine serving", "10 tasks finished"} {
		if !slices.ContainsFunc(sz.Reasoning, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("reasoning lacks %q: %q", want, sz.Reasoning)
		}
	}
	if _, err := e.admin.Sizing(ctx, "nope"); client.StatusOf(err) != 404 {
		t.Fatalf("sizing of an unknown pool: %v", err)
	}
}
