package agent

// The reclaimer keeps a run's claim alive while it runs:
//
//	sleep until takenUntil − margin ──Reclaim ok──▶ journal new credentials, sleep again
//	                                 ├─ ErrRunGone (409) ──▶ gone: the agent kills the tree, reports nothing
//	                                 ├─ other error ──▶ retry shortly, until takenUntil
//	                                 └─ takenUntil passed ──▶ gone: the queue has expired the claim

import (
	"context"
	"errors"
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
		newUntil, err := r.run.Reclaim(ctx)
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
			newUntil, err = r.run.Reclaim(ctx)
		}
		length = time.Until(newUntil)
		until = newUntil
		if r.onReclaim != nil {
			r.onReclaim(newUntil)
		}
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
