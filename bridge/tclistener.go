package bridge

// TC listener (docs/bridge.md, "TC listener"):
//
//	task-pending (taskId, last run)
//	    task gone (404)                         -> ignore
//	    builder ignored                         -> ignore (before validation)
//	    run no longer the pending latest run    -> ignore (stale duplicate)
//	    invalid (schema, scopes, builder)       -> claimTask, reportException
//	                                               malformed-payload, delete rows
//	    row for the task, row.runId > run       -> ignore (out of order)
//	    row, same run, brid set                 -> ignore (duplicate)
//	    row without brid                        -> finish its injection (its own
//	                                               run's scheduled is the key)
//	    row, older run                          -> updateRunId; request already
//	                                               complete -> its result resolves
//	                                               the new run (settleCompleted)
//	    no row                                  -> insert row; run still pending?
//	                                               inject, set brid; else drop row
//
//	task-exception (canceled | deadline-exceeded)
//	    no row                                  -> ignore
//	    row without brid                        -> retry later (injection in flight)
//	    unfinished builds                       -> cancel builds, keep row
//	    otherwise                               -> cancel request, delete row
//
// The insert of the row under UNIQUE(taskId, runId) and the SchedulerDB
// injection that is idempotent per task and run make a second build request
// impossible whichever instances see whichever copies of a message.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

// taskMessage is the part of task-pending and task-exception the bridge reads.
type taskMessage struct {
	Status tcqueue.TaskStatusStructure `json:"status"`
}

func decodeTaskMessage(body []byte) (taskMessage, tcqueue.RunInformation, error) {
	var m taskMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, tcqueue.RunInformation{}, permanent("message is not a Taskcluster task message: %w", err)
	}
	if m.Status.TaskID == "" || len(m.Status.Runs) == 0 {
		return m, tcqueue.RunInformation{}, permanent("message has no status.taskId or no status.runs")
	}
	return m, m.Status.Runs[len(m.Status.Runs)-1], nil
}

func (b *Bridge) handlePending(ctx context.Context, d pulse.Delivery) error {
	m, last, err := decodeTaskMessage(d.Body)
	if err != nil {
		return err
	}
	taskID, runID := m.Status.TaskID, int(last.RunID)
	log := b.log.With("taskId", taskID, "runId", runID)
	task, err := b.tc(ctx).Task(taskID)
	if err != nil {
		if httpStatus(err) == http.StatusNotFound {
			log.Warn("pending task no longer exists; ignoring")
			return nil
		}
		return fmt.Errorf("get task %s: %w", taskID, err)
	}
	builder := builderNameOf(task.Payload)
	if builder != "" && matchAny(b.ignored, builder) {
		log.Debug("ignored builder", "builder", builder)
		return nil
	}
	// A copy of an old message must not act on a task that moved on.
	st, err := b.tc(ctx).Status(taskID)
	if err != nil {
		return fmt.Errorf("get status of %s: %w", taskID, err)
	}
	if len(st.Status.Runs)-1 != runID || runState(&st.Status, runID) != "pending" {
		log.Debug("run is no longer the pending run; stale message ignored")
		return nil
	}
	payload, reason, err := b.validate(ctx, task, builder)
	if err != nil {
		return err
	}
	if reason != "" {
		return b.rejectTask(ctx, taskID, runID, reason)
	}
	row, err := b.store.GetTask(ctx, taskID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case row.RunID > runID:
		log.Debug("older task-pending ignored", "rowRunId", row.RunID)
		return nil
	case row.RunID == runID && row.BuildRequestID != nil:
		// A copy, or the message again after its handling failed part way:
		// the request may have completed before this run came.
		log.Debug("duplicate task-pending", "rowRunId", row.RunID)
		return b.settleCompleted(ctx, *row.BuildRequestID)
	default:
		return b.advanceRow(ctx, &st.Status, task, payload, row, runID)
	}
	nt := store.NewTask{TaskID: taskID, RunID: runID, Created: time.Time(task.Created)}
	row, created, err := b.store.Create(ctx, nt)
	if err != nil {
		return err
	}
	if !created {
		// Another instance got there first: finish its injection if it
		// has not (idempotent), else this is a duplicate.
		return b.advanceRow(ctx, &st.Status, task, payload, row, runID)
	}
	// A late copy can get here after the run was handled and its row
	// deleted: only a run still pending now gets a build request.
	again, err := b.tc(ctx).Status(taskID)
	if err != nil {
		return fmt.Errorf("get status of %s: %w", taskID, err)
	}
	if len(again.Status.Runs)-1 != runID || runState(&again.Status, runID) != "pending" {
		log.Debug("run moved on while its row was created; row removed")
		return b.tables.deleteTaskRow(ctx, row.ID)
	}
	return b.inject(ctx, taskID, runID, time.Time(last.Scheduled), task.Priority, payload)
}

// advanceRow brings an existing row up to run runID: an unfinished
// injection is finished with the scheduled time of the row's own run (the
// key under which Inject finds an earlier attempt, so a crash never yields
// a second request), then a newer run only moves the row, since Buildbot
// re-uses the request (RETRY) and a new one would be an extra build.
func (b *Bridge) advanceRow(ctx context.Context, st *tcqueue.TaskStatusStructure, task *tcqueue.TaskDefinitionResponse, p Payload, row store.Task, runID int) error {
	if row.BuildRequestID == nil {
		if row.RunID >= len(st.Runs) {
			return fmt.Errorf("task %s: row names run %d, which the queue does not have", row.TaskID, row.RunID)
		}
		if err := b.inject(ctx, row.TaskID, row.RunID, time.Time(st.Runs[row.RunID].Scheduled), task.Priority, p); err != nil {
			return err
		}
		var err error
		if row, err = b.store.GetTask(ctx, row.TaskID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		if row.BuildRequestID == nil {
			return fmt.Errorf("task %s: row still has no build request after injection", row.TaskID)
		}
	}
	if row.RunID < runID {
		moved, err := b.store.UpdateRunID(ctx, *row.BuildRequestID, runID)
		if err != nil {
			return err
		}
		b.log.Info("new run of a known task", "taskId", row.TaskID, "runId", runID, "brid", *row.BuildRequestID, "moved", moved)
	}
	// A run the queue added after claim-expired may come when the build
	// has already ended: nothing else would claim or resolve it.
	return b.settleCompleted(ctx, *row.BuildRequestID)
}

// inject writes the build request for a run whose row exists and binds it.
// Running it twice, here or on another instance, finds the same request.
func (b *Bridge) inject(ctx context.Context, taskID string, runID int, scheduled time.Time, priority string, p Payload) error {
	in := schedulerdb.Injection{TaskID: taskID, BuilderName: p.BuilderName, Properties: p.Properties, Scheduled: scheduled, Priority: priority}
	if p.Sourcestamp != nil {
		in.Sourcestamp = &schedulerdb.SourcestampSpec{Branch: p.Sourcestamp.Branch, Revision: p.Sourcestamp.Revision,
			Repository: p.Sourcestamp.Repository, Project: p.Sourcestamp.Project}
	}
	got, err := b.sdb.Inject(ctx, in)
	if err != nil {
		return err
	}
	if !got.Existed {
		b.metrics.injected.Inc()
	}
	if err := b.store.BindBuildRequest(ctx, taskID, runID, got.BRID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// The row went (task cancelled meanwhile): cancel what we made.
			_, cerr := b.cancel.cancelRequest(ctx, "", got.BRID)
			return cerr
		}
		return err
	}
	b.log.Info("build request created", "taskId", taskID, "runId", runID, "brid", got.BRID, "builder", p.BuilderName, "existed", got.Existed)
	return nil
}

// validate returns the reason a task is refused ("" when it is valid); an
// error means the check itself could not be made.
func (b *Bridge) validate(ctx context.Context, task *tcqueue.TaskDefinitionResponse, builder string) (Payload, string, error) {
	p, err := validatePayload(task.Payload)
	if err != nil {
		return p, err.Error(), nil
	}
	if !authorized(b.restricted, builder, task.Scopes) {
		return p, "not authorized: restricted builder " + builder + " needs scope buildbot-bridge:builder-name:" + builder, nil
	}
	ok, err := b.known.known(ctx, builder)
	if err != nil {
		return p, "", err
	}
	if !ok {
		return p, "invalid buildername " + builder, nil
	}
	return p, "", nil
}

// rejectTask resolves an invalid task's run malformed-payload. It claims the
// run first because the queue resolves a pending run only once it is
// claimed.
func (b *Bridge) rejectTask(ctx context.Context, taskID string, runID int, reason string) error {
	log := b.log.With("taskId", taskID, "runId", runID)
	log.Warn("task refused", "reason", reason)
	if _, err := b.claim(ctx, taskID, runID); err != nil {
		if !tcRefused(err) {
			return err
		}
		log.Warn("claim of refused task failed", "err", err)
	} else if err := b.reportException(ctx, taskID, runID, "malformed-payload"); err != nil {
		if !tcRefused(err) {
			return err
		}
		log.Warn("report malformed-payload failed", "err", err)
	} else {
		b.metrics.tcCalls.WithLabelValues("malformed").Inc()
	}
	_, err := b.store.DeleteByTask(ctx, taskID)
	return err
}

func (b *Bridge) handleException(ctx context.Context, d pulse.Delivery) error {
	m, last, err := decodeTaskMessage(d.Body)
	if err != nil {
		return err
	}
	taskID := m.Status.TaskID
	if r := last.ReasonResolved; r != "canceled" && r != "deadline-exceeded" {
		return nil
	}
	row, err := b.store.GetTask(ctx, taskID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.BuildRequestID == nil {
		if b.now().Sub(time.Unix(row.ProcessedDate, 0)) > b.cfg.Reflector.UnboundAfter {
			// An injection that never finished (docs/bridge.md, "Known
			// problems of BBB fixed here", missing SchedulerDB rows): retrying
			// cannot help, so cancel the request it may have written and drop
			// the row.
			if row.RunID < len(m.Status.Runs) {
				if err := b.cancelOrphan(ctx, taskID, time.Time(m.Status.Runs[row.RunID].Scheduled)); err != nil {
					return err
				}
			}
			return b.tables.deleteTaskRow(ctx, row.ID)
		}
		return fmt.Errorf("task %s: injection still in progress; cancelling once it has a build request", taskID)
	}
	return b.cancelInBuildbot(ctx, row, *row.BuildRequestID)
}

// cancelInBuildbot stops brid's unfinished builds (keeping the row for the
// CANCELLED log_uploaded) or, when none runs, cancels the request and
// deletes the row.
func (b *Bridge) cancelInBuildbot(ctx context.Context, row store.Task, brid int64) error {
	br, err := b.sdb.BuildRequest(ctx, brid)
	if err != nil && !errors.Is(err, schedulerdb.ErrNotFound) {
		return err
	}
	if err == nil && br.Complete {
		// Nothing left to cancel (for example the reflector's cancelTask
		// for a request cancelled in Buildbot comes back here).
		_, err := b.store.DeleteByBuildRequest(ctx, brid)
		return err
	}
	branch := ""
	ss, err := b.sdb.SourcestampForRequest(ctx, brid)
	switch {
	case errors.Is(err, schedulerdb.ErrNotFound):
		// The request's Buildbot rows are gone, so there is nothing left to
		// cancel; BBB crashed here on every redelivery (docs/bridge.md,
		// "Known problems of BBB fixed here", missing SchedulerDB rows).
		b.log.Warn("build request has no sourcestamp; dropping the row", "brid", brid)
		_, err := b.store.DeleteByBuildRequest(ctx, brid)
		return err
	case err != nil:
		return err
	default:
		branch = schedulerdb.SelfServeBranch(ss.Branch)
	}
	builds, err := b.sdb.Builds(ctx, brid)
	if err != nil {
		return err
	}
	var unfinished []schedulerdb.Build
	for _, bl := range builds {
		if bl.FinishTime == nil {
			unfinished = append(unfinished, bl)
		}
	}
	// Self-serve needs a branch; a task without a sourcestamp has none, so
	// its cancel is applied directly.
	c := b.cancel
	if branch == "" {
		c = &directCancel{sdb: b.sdb}
	}
	if len(unfinished) == 0 {
		running, err := c.cancelRequest(ctx, branch, brid)
		if err != nil {
			return err
		}
		if !running {
			_, err = b.store.DeleteByBuildRequest(ctx, brid)
			b.log.Info("build request cancelled", "taskId", row.TaskID, "brid", brid)
			return err
		}
		// A master claimed it meanwhile: cancel its builds instead.
		if unfinished, err = b.unfinishedBuilds(ctx, brid); err != nil {
			return err
		}
	}
	for _, bl := range unfinished {
		if err := c.cancelBuild(ctx, branch, bl.ID); err != nil {
			return err
		}
	}
	b.log.Info("builds cancelled", "taskId", row.TaskID, "brid", brid, "builds", len(unfinished))
	return nil
}

func (b *Bridge) unfinishedBuilds(ctx context.Context, brid int64) ([]schedulerdb.Build, error) {
	builds, err := b.sdb.Builds(ctx, brid)
	if err != nil {
		return nil, err
	}
	var out []schedulerdb.Build
	for _, bl := range builds {
		if bl.FinishTime == nil {
			out = append(out, bl)
		}
	}
	return out, nil
}
