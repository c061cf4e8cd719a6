package agent

// Fast cancellation: generic-worker learns of a cancel only at its next
// reclaim, minutes later. A CancelWatcher tells a run within seconds:
//
//	Watch(run) ──▶ watching ──cancel seen──▶ channel closed ──▶ agent stops the tree, reports nothing
//	                   └─ ctx done (run over) ──▶ watch released
//
// Implementations: PulseCancelWatcher (the queue's task-exception messages
// for this worker, one subscription for all runs) and PollCancelWatcher
// (queue.status per run at an interval). The provisioner's push channel
// will be another.

import (
	"context"
	"log/slog"
	"time"
)

// CancelWatcher tells the agent when a running run has been cancelled.
type CancelWatcher interface {
	// Watch returns a channel that is closed once run is known to be
	// cancelled (or otherwise resolved by someone else). Watching ends
	// when ctx is done.
	Watch(ctx context.Context, run Run) <-chan struct{}
}

// DefaultCancelPollInterval is how often PollCancelWatcher asks the queue:
// short enough that a cancel stops the task within 2 s without Pulse.
const DefaultCancelPollInterval = time.Second

// PollCancelWatcher polls each run's status: the fallback when neither
// Pulse nor a provisioner push is available. It costs one queue call per
// running task per interval, an unauthenticated GET of queue.status (a
// read of one task, about 1 KB answered, on a kept-alive connection); the
// queue's v44 API has no call that answers for several tasks at once, and
// it sends no validators for conditional requests, so neither a batch nor
// a 304 can make it cheaper. docs/benchmarks.md measures the rate; a fleet
// large enough for that load to matter sets pulseURL.
type PollCancelWatcher struct {
	// Interval between polls (default DefaultCancelPollInterval).
	Interval time.Duration
	// Logger receives poll failures (default slog.Default()).
	Logger *slog.Logger
}

// Watch polls run.Cancelled every Interval until ctx is done.
func (w *PollCancelWatcher) Watch(ctx context.Context, run Run) <-chan struct{} {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultCancelPollInterval
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			gone, err := run.Cancelled(ctx)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("poll run status for cancellation", "taskId", run.TaskID(), "runId", run.RunID(), "error", err)
				}
				continue
			}
			if gone {
				close(ch)
				return
			}
		}
	}()
	return ch
}

// noCancelWatcher never reports a cancellation (local runs).
type noCancelWatcher struct{}

// Watch returns a channel that is never closed.
func (noCancelWatcher) Watch(context.Context, Run) <-chan struct{} { return nil }
