package bridge

// BB listener (docs/bridge.md, "BB listener and the result mapping"):
//
//	started (taskId property, request_ids)
//	    for each brid with a row:
//	        record build -> run (first sight wins); build already resolved -> skip
//	        claimTask(task, run); store takenUntil
//	log_uploaded (request_ids from postrun.py, results)
//	    for each brid with a row:
//	        an earlier build of the request unhandled    -> retry later (order)
//	        build already resolved (duplicate)           -> skip
//	        another copy being handled                   -> retry later
//	        claimTask (started may come after finished)  -> errors ignored
//	        artifacts: public/properties.json, public/buildbot-result.json,
//	                   public/logs/live_backing.log.gz (reference to log_url)
//	        resolve by the result mapping; mark the build resolved; delete the row
//	        unless RETRY, SKIPPED or unknown
//
// A claim is retried against the task's newest run when the row still names
// an older one: after a RETRY, Buildbot's next build of the same request may
// start before the new run's task-pending has been handled.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

func decodeBuildMessage(body []byte) (BuildMessage, error) {
	var m BuildMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, permanent("message is not a Buildbot build message: %w", err)
	}
	return m, nil
}

func (b *Bridge) handleStarted(ctx context.Context, d pulse.Delivery) error {
	m, err := decodeBuildMessage(d.Body)
	if err != nil {
		return err
	}
	props, ok := m.Payload.Build.propertyMap()
	if !ok {
		return nil // not a bridged build: most builds on exchange/build are not
	}
	tp, ok := props["taskId"]
	if !ok {
		return nil
	}
	var msgTask string
	_ = json.Unmarshal(tp.Value, &msgTask)
	number := m.Payload.Build.Number
	for _, brid := range m.Payload.RequestIDs {
		row, err := b.rowForRequest(ctx, brid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if row.TaskID != msgTask {
			b.log.Warn("started build's taskId differs from the request's task (merged requests)", "brid", brid, "rowTask", row.TaskID, "messageTask", msgTask)
		}
		_, resolved, err := b.tables.buildRun(ctx, brid, number, -1)
		if err != nil {
			return err
		}
		if resolved {
			continue // a late copy: this build is over
		}
		if err := b.claimRun(ctx, row, brid, row.RunID); err != nil {
			return err
		}
	}
	return nil
}

// claimRun claims the run for the build of brid and records takenUntil. A
// refused claim is logged and skipped, unless the task has a newer pending
// run, which is then taken over.
func (b *Bridge) claimRun(ctx context.Context, row store.Task, brid int64, runID int) error {
	c, err := b.claim(ctx, row.TaskID, runID)
	if err != nil && tcRefused(err) {
		st, serr := b.tc(ctx).Status(row.TaskID)
		if serr != nil {
			if tcRefused(serr) {
				b.log.Warn("claim refused", "taskId", row.TaskID, "runId", runID, "err", err)
				return nil
			}
			return serr
		}
		latest := len(st.Status.Runs) - 1
		if latest <= runID || st.Status.Runs[latest].State != "pending" {
			b.log.Warn("claim refused", "taskId", row.TaskID, "runId", runID, "err", err)
			return nil
		}
		if _, err := b.store.UpdateRunID(ctx, brid, latest); err != nil {
			return err
		}
		runID = latest
		c, err = b.claim(ctx, row.TaskID, runID)
		if err != nil && tcRefused(err) {
			b.log.Warn("claim refused", "taskId", row.TaskID, "runId", runID, "err", err)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("claim %s/%d: %w", row.TaskID, runID, err)
	}
	b.metrics.tcCalls.WithLabelValues("claim").Inc()
	return b.store.UpdateTakenUntil(ctx, brid, time.Time(c.TakenUntil))
}

func (b *Bridge) handleLogUploaded(ctx context.Context, d pulse.Delivery) error {
	m, err := decodeBuildMessage(d.Body)
	if err != nil {
		return err
	}
	props, ok := m.Payload.Build.propertyMap()
	if !ok {
		b.log.Error("log_uploaded without usable properties", "routingKey", d.RoutingKey)
		return nil
	}
	rp, ok := props["request_ids"]
	var brids []int64
	if ok {
		_ = json.Unmarshal(rp.Value, &brids)
	}
	switch {
	case len(brids) == 0:
		b.log.Error("log_uploaded without request_ids", "routingKey", d.RoutingKey)
		return nil
	case rp.Source != "postrun.py":
		b.log.Error("WEIRD: request_ids not set by postrun.py", "source", rp.Source, "routingKey", d.RoutingKey)
		return nil
	case m.Payload.Build.Results == nil:
		b.log.Error("log_uploaded without results", "routingKey", d.RoutingKey)
		return nil
	}
	result := schedulerdb.Result(*m.Payload.Build.Results)
	var logURL string
	if lp, ok := props["log_url"]; ok {
		_ = json.Unmarshal(lp.Value, &logURL)
	}
	var errs []error
	for _, brid := range brids {
		if err := b.finishRequest(ctx, brid, m.Payload.Build.Number, result, props, logURL); err != nil {
			errs = append(errs, fmt.Errorf("request %d: %w", brid, err))
		}
	}
	return errors.Join(errs...)
}

func (b *Bridge) finishRequest(ctx context.Context, brid int64, number int, result schedulerdb.Result, props map[string]BuildProperty, logURL string) error {
	row, err := b.rowForRequest(ctx, brid)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a bridged request, or already handled
	}
	if err != nil {
		return err
	}
	if err := b.earlierBuildsHandled(ctx, brid, number); err != nil {
		return err
	}
	ok, resolved, err := b.tables.acquireBuild(ctx, brid, number, -1, 30*time.Second)
	if err != nil || resolved {
		return err
	}
	if !ok {
		return mustWait("request %d: build %d is being handled by another copy of the message", brid, number)
	}
	// Released on the way out; once marked resolved it no longer matters.
	defer b.tables.releaseBuild(context.WithoutCancel(ctx), brid, number)
	done, err := b.reportBuild(ctx, row, brid, number, result, props, logURL)
	if err != nil || !done {
		return err
	}
	return b.tables.markResolved(ctx, brid, number)
}

// reportBuild reports build number of brid, which ended with result, to the
// run the row follows: claim, artifacts, resolution, then the row is moved
// (RETRY) or deleted. done=false means the build needs no mark (the task is
// gone). A final result the queue refused because the run's claim expired
// meanwhile goes to the run the queue added for it, so that run is not left
// pending with a request that is already complete (docs/bridge.md, "A
// build that ends after its run's claim expired").
func (b *Bridge) reportBuild(ctx context.Context, row store.Task, brid int64, number int, result schedulerdb.Result, props map[string]BuildProperty, logURL string) (done bool, err error) {
	log := b.log.With("taskId", row.TaskID, "brid", brid, "result", result.String())
	// Buildbot's started event may come after this one, and the run must be
	// claimed before it can be resolved.
	if err := b.claimRun(ctx, row, brid, row.RunID); err != nil {
		log.Warn("opportunistic claim failed", "err", err)
	}
	if row, err = b.store.GetTaskByBRID(ctx, brid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	taskID, runID := row.TaskID, row.RunID
	if result == schedulerdb.Retry {
		// A RETRY handled once already (the instance died before marking
		// it) has moved the row on: acting again would retry the new run.
		applied, err := b.retryApplied(ctx, brid, number, taskID, runID)
		if err != nil {
			return false, err
		}
		if applied {
			return true, nil
		}
	}
	task, err := b.tc(ctx).Task(taskID)
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			_, err := b.store.DeleteByBuildRequest(ctx, brid)
			return false, err
		}
		return false, err
	}
	var keep bool
	for attempt := 0; ; attempt++ {
		if err := b.uploadArtifacts(ctx, taskID, runID, time.Time(task.Expires), result, props, logURL); err != nil {
			return false, err
		}
		var refused bool
		keep, refused, err = b.resolve(ctx, taskID, runID, result)
		if err != nil {
			return false, err
		}
		if !refused || keep || attempt == 2 {
			break
		}
		next, err := b.followExpiredClaim(ctx, row, brid, runID)
		if err != nil {
			return false, err
		}
		if next < 0 {
			break
		}
		log.Info("run's claim expired before the build's result was reported; reporting it to the run the queue added", "runId", runID, "newRunId", next)
		runID = next
	}
	if result == schedulerdb.Retry {
		// Point the row at the run rerunTask made now, so that the next
		// build of this request claims and resolves that run.
		if st, err := b.tc(ctx).Status(taskID); err == nil {
			if latest := len(st.Status.Runs) - 1; latest > runID && st.Status.Runs[latest].State == "pending" {
				if _, err := b.store.UpdateRunID(ctx, brid, latest); err != nil {
					return false, err
				}
			}
		} else if !tcRefused(err) {
			return false, err
		}
	}
	// The row goes before the mark: a copy handled after a crash between
	// the two then finds no row, rather than a marked build and a row
	// that nothing would delete.
	if !keep {
		if _, err := b.store.DeleteByBuildRequest(ctx, brid); err != nil {
			return false, err
		}
	}
	log.Info("build finished", "runId", runID, "rowKept", keep)
	return true, nil
}

// followExpiredClaim returns the run that the queue added after run runID's
// claim expired, once the row follows it and it is claimed, or -1 when
// runID was resolved otherwise (or the new run is not pending any more).
func (b *Bridge) followExpiredClaim(ctx context.Context, row store.Task, brid int64, runID int) (int, error) {
	st, err := b.tc(ctx).Status(row.TaskID)
	if err != nil {
		if tcRefused(err) {
			return -1, nil
		}
		return -1, err
	}
	runs := st.Status.Runs
	latest := len(runs) - 1
	if runID >= latest || runs[runID].State != "exception" || runs[runID].ReasonResolved != "claim-expired" {
		return -1, nil
	}
	if runs[latest].State != "pending" && !(runs[latest].State == "running" && runs[latest].WorkerGroup == b.cfg.Taskcluster.WorkerGroup && runs[latest].WorkerID == b.cfg.Taskcluster.WorkerID) {
		return -1, nil
	}
	if _, err := b.store.UpdateRunID(ctx, brid, latest); err != nil {
		return -1, err
	}
	row.RunID = latest
	if err := b.claimRun(ctx, row, brid, latest); err != nil {
		return -1, err
	}
	return latest, nil
}

// resolve applies the result mapping (docs/bridge.md, "BB listener and the
// result mapping") and reports whether the row stays. A resolution the queue
// refuses (the run is already resolved, for example by a duplicate of this
// message) counts as done, and refused says so.
func (b *Bridge) resolve(ctx context.Context, taskID string, runID int, result schedulerdb.Result) (keep, refused bool, err error) {
	q := b.tc(ctx)
	run := strconv.Itoa(runID)
	refusedOK := func(action string, err error) error {
		if err == nil {
			b.metrics.tcCalls.WithLabelValues(action).Inc()
			return nil
		}
		if tcRefused(err) {
			refused = true
			b.log.Warn("resolution refused; the run is already resolved", "taskId", taskID, "runId", runID, "action", action, "err", err)
			return nil
		}
		return err
	}
	switch result {
	case schedulerdb.Success:
		_, err = q.ReportCompleted(taskID, run)
		err = refusedOK("completed", err)
		return false, refused, err
	case schedulerdb.Warnings, schedulerdb.Failure:
		_, err = q.ReportFailed(taskID, run)
		err = refusedOK("failed", err)
		return false, refused, err
	case schedulerdb.Exception:
		err = refusedOK("exception", b.reportException(ctx, taskID, runID, "malformed-payload"))
		return false, refused, err
	case schedulerdb.Retry:
		if err := refusedOK("exception", b.reportException(ctx, taskID, runID, "malformed-payload")); err != nil {
			return true, refused, err
		}
		// A task whose newest run is pending or running is left as it is by
		// rerunTask, so a repeated call adds no run.
		_, err = q.RerunTask(taskID)
		err = refusedOK("rerun", err)
		return true, refused, err
	case schedulerdb.Cancelled:
		st, err := q.Status(taskID)
		if err != nil {
			if tcRefused(err) {
				return false, true, nil
			}
			return false, false, err
		}
		if runState(&st.Status, runID) == "running" {
			_, err = q.CancelTask(taskID)
			err = refusedOK("cancel", err)
			return false, refused, err
		}
		return false, true, nil
	case schedulerdb.Skipped:
		b.log.Warn("SKIPPED build result should not happen; row kept", "taskId", taskID)
		return true, false, nil
	}
	b.log.Warn("WEIRD build result; row kept", "taskId", taskID, "result", int(result))
	return true, false, nil
}

// earlierBuildsHandled holds back the log_uploaded of build number of brid
// while an earlier finished build of the same request (a RETRY) has not
// been handled: reordered, the later build would resolve the earlier run.
func (b *Bridge) earlierBuildsHandled(ctx context.Context, brid int64, number int) error {
	builds, err := b.sdb.Builds(ctx, brid)
	if err != nil {
		return err
	}
	for _, bl := range builds {
		if bl.Number >= number || bl.FinishTime == nil {
			continue
		}
		_, resolved, err := b.tables.buildRun(ctx, brid, bl.Number, -1)
		if err != nil {
			return err
		}
		if !resolved {
			return mustWait("request %d: build %d waits for earlier build %d to be handled", brid, number, bl.Number)
		}
	}
	return nil
}

// rowForRequest returns the row of build request brid. A build may start
// (and even finish) between the injection's commit and the moment the row
// records its brid; such a row, still unbound, is bound here rather than
// the event being dropped, when brid is the request of the row's run.
func (b *Bridge) rowForRequest(ctx context.Context, brid int64) (store.Task, error) {
	row, err := b.store.GetTaskByBRID(ctx, brid)
	if !errors.Is(err, store.ErrNotFound) {
		return row, err
	}
	bs, berr := b.sdb.BuildsetForRequest(ctx, brid)
	if errors.Is(berr, schedulerdb.ErrNotFound) || (berr == nil && !strings.HasPrefix(bs.ExternalIDString, schedulerdb.ExternalIDPrefix)) {
		return row, err
	}
	if berr != nil {
		return row, berr
	}
	taskID := strings.TrimPrefix(bs.ExternalIDString, schedulerdb.ExternalIDPrefix)
	unbound, terr := b.store.GetTask(ctx, taskID)
	if terr != nil || unbound.BuildRequestID != nil {
		return row, err
	}
	// Only the request injected for the row's own run (submitted_at is that
	// run's scheduled): a late event of an older request of the task (its
	// row gone, a rerun's row being injected) must not take the new row.
	st, serr := b.tc(ctx).Status(taskID)
	if serr != nil {
		if tcRefused(serr) {
			return row, err
		}
		return row, serr
	}
	if unbound.RunID >= len(st.Status.Runs) || time.Time(st.Status.Runs[unbound.RunID].Scheduled).Unix() != bs.SubmittedAt {
		b.log.Debug("event of another run's request; the unbound row is left to its injection", "taskId", taskID, "runId", unbound.RunID, "brid", brid)
		return row, err
	}
	bound, serr := b.store.SetBuildRequestID(ctx, taskID, unbound.RunID, brid)
	if serr != nil {
		if errors.Is(serr, store.ErrNotFound) || errors.Is(serr, store.ErrConflict) {
			return row, err
		}
		return row, serr
	}
	return bound, nil
}

// retryApplied reports whether build (brid, number)'s RETRY was already
// applied: the run recorded for the build is older than the row's and was
// resolved malformed-payload by the bridge (not claim-expired by the
// queue, after which the build's result belongs to the newer run). When
// not, it records runID as the run the RETRY is about to resolve.
func (b *Bridge) retryApplied(ctx context.Context, brid int64, number int, taskID string, runID int) (bool, error) {
	recorded, _, err := b.tables.buildRun(ctx, brid, number, runID)
	if err != nil {
		return false, err
	}
	if recorded >= 0 && recorded < runID {
		st, err := b.tc(ctx).Status(taskID)
		if err != nil {
			return false, err
		}
		if recorded < len(st.Status.Runs) {
			if r := st.Status.Runs[recorded]; r.State == "exception" && r.ReasonResolved == "malformed-payload" {
				return true, nil
			}
		}
	}
	return false, b.tables.setBuildRun(ctx, brid, number, runID)
}
