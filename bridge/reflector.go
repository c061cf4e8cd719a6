package bridge

// Reflector (docs/bridge.md, "Reflector": the rules of BBB's v2 reflector),
// one pass every reflector.interval on the rows this instance leases:
//
//	row without brid, older than unbound_after  -> finish the injection, or
//	                                               drop the row if its run moved on
//	row queued (takenUntil NULL)                -> request complete and never
//	                                               claimed: cancelTask, delete row
//	row running, now >= takenUntil - threshold  -> reclaim step:
//	    task past its deadline                   -> delete row
//	    run not running                          -> skip
//	    reclaimTask ok                           -> store takenUntil
//	    404 / 403                                -> delete row
//	    409, deadline passed, request incomplete -> cancel builds, delete row
//	    409, deadline passed, request complete   -> log
//	    409 otherwise (run resolved meanwhile)   -> leave it to the BB listener
//
// Leases (bridge/store) split the rows between instances, so N instances
// do not reclaim one task N times; a dead instance's rows are taken over
// when its leases lapse.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
)

func (b *Bridge) runReflector(ctx context.Context) error {
	t := time.NewTicker(b.cfg.Reflector.Interval)
	defer t.Stop()
	for {
		if _, err := b.ReflectOnce(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("reflector pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PassStats counts what one reflector pass did.
type PassStats struct {
	Leased, Reclaimed, Cancelled, Dropped, Injected int
}

// ReflectOnce runs one reflector pass over the rows this instance can lease.
func (b *Bridge) ReflectOnce(ctx context.Context) (PassStats, error) {
	var st PassStats
	ttl := max(3*b.cfg.Reflector.Interval, time.Second)
	rows, err := b.store.AcquireLeases(ctx, b.cfg.InstanceID, ttl, b.cfg.Reflector.LeaseBatch)
	if err != nil {
		return st, err
	}
	st.Leased = len(rows)
	now := b.now()
	var queued []int64
	queuedRows := map[int64]store.Task{}
	var due []store.Task
	for _, r := range rows {
		switch {
		case r.BuildRequestID == nil:
			if now.Sub(time.Unix(r.ProcessedDate, 0)) > b.cfg.Reflector.UnboundAfter {
				due = append(due, r)
			}
		case r.TakenUntil == nil:
			queued = append(queued, *r.BuildRequestID)
			queuedRows[*r.BuildRequestID] = r
		case reclaimDue(time.Unix(*r.TakenUntil, 0), b.cfg.Reflector.ReclaimThreshold, now):
			due = append(due, r)
		}
	}
	var mu sync.Mutex
	count := func(p *int) { mu.Lock(); *p++; mu.Unlock() }
	if len(queued) > 0 {
		cancelled, err := b.sdb.CancelledBeforeStart(ctx, queued)
		if err != nil {
			return st, err
		}
		for _, brid := range b.lostFinishes(ctx, queued, cancelled) {
			if err := b.finishFromSchedulerDB(ctx, brid); err != nil {
				b.log.Warn("resolve from the SchedulerDB", "brid", brid, "err", err)
			}
		}
		for _, brid := range cancelled {
			r := queuedRows[brid]
			if _, err := b.tc(ctx).CancelTask(r.TaskID); err != nil && !tcRefused(err) {
				b.log.Warn("cancelTask for a request cancelled in Buildbot", "taskId", r.TaskID, "err", err)
				continue
			}
			if _, err := b.store.DeleteByBuildRequest(ctx, brid); err != nil {
				return st, err
			}
			b.log.Info("request cancelled in Buildbot before it started; task cancelled", "taskId", r.TaskID, "brid", brid)
			count(&st.Cancelled)
		}
	}
	sem := make(chan struct{}, b.cfg.Reflector.Concurrency)
	var wg sync.WaitGroup
	for _, r := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var outcome string
			var err error
			if r.BuildRequestID == nil {
				outcome, err = b.finishUnbound(ctx, r)
			} else {
				outcome, err = b.reclaimStep(ctx, r, *r.BuildRequestID)
			}
			if err != nil {
				b.log.Warn("reflector step failed", "taskId", r.TaskID, "err", err)
				outcome = "error"
			}
			b.metrics.reclaims.WithLabelValues(outcome).Inc()
			switch outcome {
			case "reclaimed":
				count(&st.Reclaimed)
			case "dropped", "cancelled-builds":
				count(&st.Dropped)
			case "injected":
				count(&st.Injected)
			}
		}()
	}
	wg.Wait()
	return st, ctx.Err()
}

func (b *Bridge) reclaimStep(ctx context.Context, r store.Task, brid int64) (string, error) {
	if lost := b.lostFinishes(ctx, []int64{brid}, nil); len(lost) == 1 {
		return "resolved-lost-event", b.finishFromSchedulerDB(ctx, brid)
	}
	q := b.tc(ctx)
	st, err := q.Status(r.TaskID)
	if err != nil {
		if s := httpStatus(err); s == http.StatusNotFound || s == http.StatusForbidden {
			_, err := b.store.DeleteByBuildRequest(ctx, brid)
			return "dropped", err
		}
		return "", err
	}
	if !time.Time(st.Status.Deadline).After(b.now()) {
		// The TC listener's deadline-exceeded handling cancels in Buildbot.
		_, err := b.store.DeleteByBuildRequest(ctx, brid)
		return "dropped", err
	}
	if runState(&st.Status, r.RunID) != "running" {
		return "not-running", nil
	}
	rc, err := q.ReclaimTask(r.TaskID, strconv.Itoa(r.RunID))
	if err == nil {
		return "reclaimed", b.store.UpdateTakenUntil(ctx, brid, time.Time(rc.TakenUntil))
	}
	switch httpStatus(err) {
	case http.StatusNotFound, http.StatusForbidden:
		_, err := b.store.DeleteByBuildRequest(ctx, brid)
		return "dropped", err
	case http.StatusConflict:
		// The run may have been resolved between the status read and the
		// reclaim (a RETRY, whose request Buildbot runs again): that is
		// the BB listener's business. Only a deadline makes it ours.
		again, serr := q.Status(r.TaskID)
		if serr != nil {
			return "", serr
		}
		if time.Time(again.Status.Deadline).After(b.now()) {
			return "conflict-resolved", nil
		}
		br, berr := b.sdb.BuildRequest(ctx, brid)
		if berr != nil && !errors.Is(berr, schedulerdb.ErrNotFound) {
			return "", berr
		}
		if berr == nil && br.Complete {
			return "conflict-complete", nil
		}
		if berr == nil {
			if err := b.cancelInBuildbot(ctx, r, brid); err != nil {
				return "", err
			}
		}
		_, err := b.store.DeleteByBuildRequest(ctx, brid)
		return "cancelled-builds", err
	}
	return "", err
}

// finishUnbound completes an injection interrupted by a crash, which BBB
// left pending until its deadline (docs/bridge.md, "Known problems of BBB
// fixed here", interrupted injection). When the task no longer has a
// pending run, a request the crash may have left behind is cancelled and
// the row dropped.
func (b *Bridge) finishUnbound(ctx context.Context, r store.Task) (string, error) {
	q := b.tc(ctx)
	st, err := q.Status(r.TaskID)
	if err != nil && !tcRefused(err) {
		return "", err
	}
	latest := -1
	if err == nil {
		latest = len(st.Status.Runs) - 1
	}
	if latest < r.RunID || runState(&st.Status, latest) != "pending" {
		if err == nil && r.RunID < len(st.Status.Runs) {
			if err := b.cancelOrphan(ctx, r.TaskID, time.Time(st.Status.Runs[r.RunID].Scheduled)); err != nil {
				return "", err
			}
		}
		return "dropped", b.tables.deleteTaskRow(ctx, r.ID)
	}
	task, err := q.Task(r.TaskID)
	if err != nil {
		return "", err
	}
	p, reason, err := b.validate(ctx, task, builderNameOf(task.Payload))
	if err != nil {
		return "", err
	}
	if reason != "" {
		return "dropped", b.rejectTask(ctx, r.TaskID, latest, reason)
	}
	return "injected", b.advanceRow(ctx, &st.Status, task, p, r, latest)
}

// cancelOrphan cancels the request an interrupted injection for the run
// scheduled at scheduled may have written, if any.
func (b *Bridge) cancelOrphan(ctx context.Context, taskID string, scheduled time.Time) error {
	found, err := b.sdb.InjectedRequest(ctx, taskID, scheduled)
	if err != nil || found == nil {
		return err
	}
	_, err = b.cancel.cancelRequest(ctx, "", found.BRID)
	return err
}

// reclaimDue is v2's should_reclaim: reclaim_at = takenUntil - threshold,
// due from that instant on.
func reclaimDue(takenUntil time.Time, threshold time.Duration, now time.Time) bool {
	return !now.Before(takenUntil.Add(-threshold))
}

// lostFinishes returns those of brids (less skip) whose request Buildbot
// completed, after claiming it, longer than reflector.lost_event_after
// ago: their log_uploaded never came or was lost.
func (b *Bridge) lostFinishes(ctx context.Context, brids, skip []int64) []int64 {
	var out []int64
	before := b.now().Add(-b.cfg.Reflector.LostEventAfter).Unix()
	for _, brid := range brids {
		if slices.Contains(skip, brid) {
			continue
		}
		br, err := b.sdb.BuildRequest(ctx, brid)
		if err == nil && br.Complete && br.ClaimedAt != 0 && br.CompleteAt != nil && *br.CompleteAt < before && br.Results != nil {
			out = append(out, brid)
		}
	}
	return out
}

// finishFromSchedulerDB handles a lost log_uploaded as if it had come:
// the last build of brid, the request's result, the buildset's
// properties. A copy of the real message later finds the build handled.
//
// Earlier finished builds of the request ended RETRY (nothing else puts a
// request back for another build) and Buildbot has run it again since; a
// log_uploaded of theirs that has not come by now is lost too, and waiting
// for it would hold the request's result back for ever while the run's
// claim expires. They are marked handled without acting: the last build's
// result is the task's.
//
// A last build already handled whose row is still there was reported to a
// run whose claim had expired: its result goes to the run the row now
// follows (docs/bridge.md, "A build that ends after its run's claim
// expired").
func (b *Bridge) finishFromSchedulerDB(ctx context.Context, brid int64) error {
	br, err := b.sdb.BuildRequest(ctx, brid)
	if err != nil {
		return err
	}
	builds, err := b.sdb.Builds(ctx, brid)
	if err != nil || len(builds) == 0 || br.Results == nil {
		return err
	}
	props, err := b.sdb.BuildsetProperties(ctx, br.BuildsetID)
	if err != nil {
		return err
	}
	bp := make(map[string]BuildProperty, len(props))
	for name, p := range props {
		bp[name] = BuildProperty{Value: p.Value, Source: p.Source}
	}
	last := builds[len(builds)-1]
	for _, bl := range builds[:len(builds)-1] {
		if bl.FinishTime == nil {
			continue
		}
		_, resolved, err := b.tables.buildRun(ctx, brid, bl.Number, -1)
		if err != nil {
			return err
		}
		if !resolved {
			b.log.Warn("no log_uploaded for an earlier build of a completed request; its RETRY is superseded", "brid", brid, "number", bl.Number)
			if err := b.tables.markResolved(ctx, brid, bl.Number); err != nil {
				return err
			}
		}
	}
	_, resolved, err := b.tables.buildRun(ctx, brid, last.Number, -1)
	if err != nil {
		return err
	}
	if resolved {
		if !finalResult(*br.Results) {
			return nil // the row stays by the result mapping
		}
		row, err := b.store.GetTaskByBRID(ctx, brid)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b.log.Warn("completed request's row follows a newer run; reporting the result to it", "taskId", row.TaskID, "runId", row.RunID, "brid", brid, "result", br.Results.String())
		_, err = b.reportBuild(ctx, row, brid, last.Number, *br.Results, bp, "")
		return err
	}
	b.log.Warn("no log_uploaded for a completed request; resolving from the SchedulerDB", "brid", brid, "result", br.Results.String())
	return b.finishRequest(ctx, brid, last.Number, *br.Results, bp, "")
}

// settleCompleted gives the run a row follows the result of its build
// request when the request is already complete: the task's newest run came
// (after claim-expired) once the build had ended. When the build's
// log_uploaded is still to come, it claims and resolves that run itself; a
// handled or lost one is made up for from the SchedulerDB.
func (b *Bridge) settleCompleted(ctx context.Context, brid int64) error {
	br, err := b.sdb.BuildRequest(ctx, brid)
	if errors.Is(err, schedulerdb.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// claimed_at 0: cancelled before it started, which the reflector
	// handles (cancelTask).
	if !br.Complete || br.ClaimedAt == 0 || br.Results == nil || !finalResult(*br.Results) {
		return nil
	}
	builds, err := b.sdb.Builds(ctx, brid)
	if err != nil || len(builds) == 0 {
		return err
	}
	_, resolved, err := b.tables.buildRun(ctx, brid, builds[len(builds)-1].Number, -1)
	if err != nil {
		return err
	}
	lost := br.CompleteAt != nil && *br.CompleteAt < b.now().Add(-b.cfg.Reflector.LostEventAfter).Unix()
	if !resolved && !lost {
		return nil
	}
	return b.finishFromSchedulerDB(ctx, brid)
}

// finalResult reports results after which the BB listener deletes the row.
func finalResult(r schedulerdb.Result) bool {
	switch r {
	case schedulerdb.Success, schedulerdb.Warnings, schedulerdb.Failure, schedulerdb.Exception, schedulerdb.Cancelled:
		return true
	}
	return false
}
