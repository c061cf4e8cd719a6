package agent

import (
	"context"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/pulse"
)

// fakeRun is a Run known only by its ids, enough for a cancel watcher.
type fakeRun struct {
	taskID string
	runID  int
}

func (r fakeRun) TaskID() string                             { return r.taskID }
func (r fakeRun) RunID() int                                 { return r.runID }
func (r fakeRun) Task() *tcqueue.TaskDefinitionResponse      { return &tcqueue.TaskDefinitionResponse{} }
func (r fakeRun) TakenUntil() time.Time                      { return time.Time{} }
func (r fakeRun) Credentials() tcclient.Credentials          { return tcclient.Credentials{} }
func (r fakeRun) Reclaim(context.Context) (time.Time, error) { return time.Time{}, nil }
func (r fakeRun) Publish(context.Context, RunArtifact) error { return nil }
func (r fakeRun) Resolve(context.Context, Resolution) error  { return nil }
func (r fakeRun) Cancelled(context.Context) (bool, error)    { return false, nil }

func TestPulseCancelWatcherSelectsItsRuns(t *testing.T) {
	bus := pulse.NewInProcess()
	t.Cleanup(func() { _ = bus.Close() })
	w := NewPulseCancelWatcher(bus, "queue/test/cancel", "prov", "wt", "grp", "me", nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = w.Run(ctx) }()
	<-w.Ready()
	publish := func(taskID, runID, workerID string) {
		t.Helper()
		key := "primary." + taskID + "." + runID + ".grp." + workerID + ".prov.wt.sched.group._"
		if err := bus.Publish(ctx, pulse.Outgoing{Exchange: taskExceptionExchange, RoutingKey: key, Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	watched := w.Watch(ctx, fakeRun{"taskA", 0})
	marker := w.Watch(ctx, fakeRun{"taskD", 0})
	// Another worker's run with the same ids, and our task's other run,
	// must not stop it; taskD/0, published last, shows they were handled.
	publish("taskA", "0", "someone-else")
	publish("taskA", "1", "me")
	publish("taskD", "0", "me")
	select {
	case <-marker:
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation of taskD/0 not delivered")
	}
	select {
	case <-watched:
		t.Fatal("taskA/0 stopped by another worker's or another run's cancellation")
	default:
	}
	// A cancellation that arrives before Watch is kept for it.
	publish("taskB", "0", "me")
	publish("taskA", "0", "me")
	select {
	case <-watched:
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation of taskA/0 not delivered")
	}
	early := w.Watch(ctx, fakeRun{"taskB", 0})
	select {
	case <-early:
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation of taskB/0 that came before Watch was lost")
	}
	// taskA/1 was cancelled for this worker but never watched; a new watch
	// of a different run must stay open.
	other := w.Watch(ctx, fakeRun{"taskC", 0})
	select {
	case <-other:
		t.Fatal("taskC/0 reported cancelled without a message")
	default:
	}
}
