package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// stuckRun is a run whose Reclaim never answers until its context ends,
// as a queue call retrying refused connections for minutes does.
type stuckRun struct {
	fakeRun
	until    time.Time
	reclaims chan struct{}
}

func (r *stuckRun) TakenUntil() time.Time { return r.until }

func (r *stuckRun) Reclaim(ctx context.Context) (time.Time, error) {
	r.reclaims <- struct{}{}
	<-ctx.Done()
	return time.Time{}, ctx.Err()
}

// A reclaim still retrying when takenUntil passes loses the run then: the
// queue has expired the claim and may give the task to another worker, so
// the run must not go on until the call gives up.
func TestReclaimerGivesUpAtTakenUntil(t *testing.T) {
	run := &stuckRun{fakeRun: fakeRun{taskID: "t", runID: 0}, until: time.Now().Add(1500 * time.Millisecond), reclaims: make(chan struct{}, 10)}
	r := &reclaimer{run: run, margin: time.Second, retryEvery: 100 * time.Millisecond, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// The run's own context outlives the claim by far.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gone := make(chan struct{})
	go r.loop(ctx, gone)
	select {
	case <-run.reclaims:
	case <-time.After(30 * time.Second):
		t.Fatal("no reclaim was attempted")
	}
	select {
	case <-gone:
		if time.Now().Before(run.until) {
			t.Error("run declared gone before its claim ended")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run not declared gone while its reclaim kept retrying past takenUntil")
	}
}
