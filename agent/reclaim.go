package agent

// The reclaimer keeps a run's claim alive while it runs:
//
//	sleep until takenUntil − margin ──Reclaim ok──▶ journal new credentials, sleep again
//	                                 ├─ ErrRunGone (409) ──▶ gone: the agent kills the tree, reports nothing
//	                                 ├─ other error ──▶ retry shortly, until takenUntil
//	                                 └─ takenUntil passed (even inside a call still
//	                                    retrying) ──▶ gone: the queue has expired the claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// reclaimer reclaims one run in the background.
type reclaimer struct {
	run Run
	// margin is how long before takenUntil to reclaim; 0 means a third of
	// the claim's length.
	margin     time.Duration
	retryEvery time.Duration
	onReclaim  func(takenUntil time.Time)
	log        *slog.Logger
}

// loop reclaims until ctx is done; it closes gone if the run is lost.
func (r *reclaimer) loop(ctx context.Context, gone chan<- struct{}) {
	until := r.run.TakenUntil()
	if until.IsZero() {
		return // the source has no claims to keep
	}
	length := time.Until(until)
	for {
		margin := r.margin
		if margin <= 0 {
			margin = length / 3
		}
		if !sleepCtx(ctx, time.Until(until)-margin) {
			return
		}
		newUntil, err := r.reclaimBefore(ctx, until)
		for err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrRunGone) {
				r.log.Info("reclaim refused: run cancelled or no longer ours", "taskId", r.run.TaskID(), "runId", r.run.RunID())
				close(gone)
				return
			}
			if time.Now().After(until) {
				r.log.Error("claim expired before a reclaim succeeded", "taskId", r.run.TaskID(), "runId", r.run.RunID(), "error", err)
				close(gone)
				return
			}
			r.log.Warn("reclaim failed; retrying", "taskId", r.run.TaskID(), "runId", r.run.RunID(), "error", err)
			if !sleepCtx(ctx, min(r.retryEvery, time.Until(until))) {
				return
			}
			newUntil, err = r.reclaimBefore(ctx, until)
		}
		length = time.Until(newUntil)
		until = newUntil
		if r.onReclaim != nil {
			r.onReclaim(newUntil)
		}
	}
}

// reclaimBefore calls Reclaim and returns at until at the latest. One
// Reclaim retries transient errors for minutes (a queue that refuses
// connections), but once until has passed the queue has expired the claim
// and may already have handed the task to another worker: the run must
// stop then, not when the call gives up.
func (r *reclaimer) reclaimBefore(ctx context.Context, until time.Time) (time.Time, error) {
	callCtx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	type result struct {
		until time.Time
		err   error
	}
	done := make(chan result, 1)
	go func() {
		u, err := r.run.Reclaim(callCtx)
		done <- result{u, err}
	}()
	select {
	case res := <-done:
		return res.until, res.err
	case <-callCtx.Done():
		select {
		case res := <-done: // answered at the last moment
			return res.until, res.err
		default:
		}
		return time.Time{}, fmt.Errorf("reclaim task %s run %d: no answer before takenUntil %s: %w",
			r.run.TaskID(), r.run.RunID(), until.UTC().Format(time.RFC3339), callCtx.Err())
	}
}

// sleepCtx sleeps for d or until ctx is done; it reports whether the full
// time passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
