package devqueue

import (
	"encoding/json"
	"strconv"
	"time"
)

// maxRuns is the queue's MAX_RUNS_ALLOWED.
const maxRuns = 50

func (s *Server) ping(c *call) (any, *apiError) {
	return map[string]any{"alive": true, "uptime": time.Since(s.started).Seconds()}, nil
}

func (s *Server) getTask(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[c.params["taskId"]]
	if !ok {
		return nil, errorf("ResourceNotFound", "`%s` does not correspond to a task that exists.\nAre you sure this task has been submitted before?", c.params["taskId"])
	}
	return t.Def, nil
}

func (s *Server) getStatus(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[c.params["taskId"]]
	if !ok {
		return nil, errorf("ResourceNotFound", "`%s` does not correspond to a task that exists.\nAre you sure this task has been submitted before?", c.params["taskId"])
	}
	return statusResponse{Status: t.status()}, nil
}

// lockedTask locks s.mu and returns the task named in the path; on error
// the lock is already released.
func (s *Server) lockedTask(c *call) (*task, *apiError) {
	s.mu.Lock()
	t, ok := s.tasks[c.params["taskId"]]
	if !ok {
		s.mu.Unlock()
		return nil, errorf("ResourceNotFound", "Task `%s` not found. Are you sure it was created?", c.params["taskId"])
	}
	return t, nil
}

// lockedRun is lockedTask plus the run named in the path.
func (s *Server) lockedRun(c *call) (*task, int, *apiError) {
	t, aerr := s.lockedTask(c)
	if aerr != nil {
		return nil, 0, aerr
	}
	runID, err := strconv.Atoi(c.params["runId"])
	if err != nil || runID < 0 || runID >= len(t.Runs) {
		s.mu.Unlock()
		return nil, 0, errorf("ResourceNotFound", "Run %s not found on task `%s`.", c.params["runId"], t.ID)
	}
	return t, runID, nil
}

func (s *Server) scheduleTask(c *call) (any, *apiError) {
	t, aerr := s.lockedTask(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	if t.Deadline.Before(s.now()) {
		return nil, errorf("RequestConflict", "Task `%s` can't be scheduled past its deadline at %s.", t.ID, formatTime(t.Deadline))
	}
	if s.scheduleRun(t, "scheduled") {
		s.publish("task-pending", t, publishOpts{runID: 0})
	}
	return statusResponse{Status: t.status()}, nil
}

func (s *Server) rerunTask(c *call) (any, *apiError) {
	t, aerr := s.lockedTask(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	if t.Deadline.Before(s.now()) {
		return nil, errorf("RequestConflict", "Task `%s` can't be rescheduled past its deadline of %s.", t.ID, formatTime(t.Deadline))
	}
	// rerun_task
	last := t.lastRun()
	if (last == nil || (last.State != "pending" && last.State != "running")) && len(t.Runs) < maxRuns {
		t.RetriesLeft = min(t.Def.Retries, maxRuns-len(t.Runs)-1)
		t.Runs = append(t.Runs, &run{State: "pending", ReasonCreated: "rerun", Scheduled: s.now()})
		s.enqueuePending(t)
	}
	state := t.state()
	if state != "pending" && state != "running" && len(t.Runs) >= maxRuns {
		return nil, errorf("RequestConflict", "Maximum number of runs reached (%d).", maxRuns)
	}
	if state == "pending" {
		s.publish("task-pending", t, publishOpts{runID: len(t.Runs) - 1})
	}
	return statusResponse{Status: t.status()}, nil
}

// cancelRun applies cancel_task with reason; it reports whether the task
// changed. Call it under s.mu.
func (s *Server) cancelRun(t *task, reason string) bool {
	now := s.now()
	last := t.lastRun()
	if last == nil {
		t.Runs = append(t.Runs, &run{State: "exception", ReasonCreated: "exception", ReasonResolved: reason, Scheduled: now, Resolved: now})
		return true
	}
	if last.State != "pending" && last.State != "running" {
		return false
	}
	last.State = "exception"
	last.ReasonResolved = reason
	last.Resolved = now
	return true
}

func (s *Server) cancelTask(c *call) (any, *apiError) {
	t, aerr := s.lockedTask(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	if t.Deadline.Before(s.now()) {
		return nil, errorf("RequestConflict", "Task `%s` can't be canceled past its deadline of %s.", t.ID, formatTime(t.Deadline))
	}
	s.cancelRun(t, "canceled")
	// Like the real queue, a repeated cancel re-announces the exception
	// (at-least-once delivery).
	if last := t.lastRun(); last.State == "exception" && last.ReasonResolved == "canceled" {
		s.publish("task-exception", t, publishOpts{runID: len(t.Runs) - 1, workerGroup: last.WorkerGroup, workerID: last.WorkerID})
		s.resolveDependents(t.ID, "exception")
	}
	return statusResponse{Status: t.status()}, nil
}

// resolveRun applies resolve_task to the latest running run, adding a retry
// run when retryReason is set and retries are left. Call it under s.mu.
func (s *Server) resolveRun(t *task, runID int, state, reason, retryReason string) {
	if runID != len(t.Runs)-1 || t.Runs[runID].State != "running" {
		return
	}
	r := t.Runs[runID]
	r.State = state
	r.ReasonResolved = reason
	r.Resolved = s.now()
	if retryReason != "" && t.RetriesLeft > 0 {
		t.Runs = append(t.Runs, &run{State: "pending", ReasonCreated: retryReason, Scheduled: s.now()})
		t.RetriesLeft--
		s.enqueuePending(t)
	}
}

func (s *Server) reportCompleted(c *call) (any, *apiError) {
	// Very old workers report failure as completed with {success: false}.
	var legacy struct {
		Success *bool `json:"success"`
	}
	_ = json.Unmarshal(c.body, &legacy)
	if legacy.Success != nil && !*legacy.Success {
		return s.resolve(c, "failed")
	}
	return s.resolve(c, "completed")
}

func (s *Server) reportFailed(c *call) (any, *apiError) { return s.resolve(c, "failed") }

func (s *Server) resolve(c *call, target string) (any, *apiError) {
	t, runID, aerr := s.lockedRun(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	r := t.Runs[runID]
	if r.State != "running" && r.State != target {
		return nil, errorf("RequestConflict", "Run %d of task `%s` is not running or %s.", runID, t.ID, target)
	}
	s.resolveRun(t, runID, target, target, "")
	r = t.Runs[runID]
	if len(t.Runs)-1 != runID || r.State != target || r.ReasonResolved != target {
		return nil, errorf("RequestConflict", "Run %d on task `%s` is resolved or not running.", runID, t.ID)
	}
	exchange := "task-completed"
	if target == "failed" {
		exchange = "task-failed"
	}
	s.publish(exchange, t, publishOpts{runID: runID, withTags: true, workerGroup: r.WorkerGroup, workerID: r.WorkerID})
	// Dependents are announced after the resolution, as the real queue's
	// asynchronous dependency resolver does.
	s.resolveDependents(t.ID, target)
	return statusResponse{Status: t.status()}, nil
}

func (s *Server) reportException(c *call) (any, *apiError) {
	var req struct {
		Reason string `json:"reason"`
	}
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	t, runID, aerr := s.lockedRun(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	retryReason := ""
	switch req.Reason {
	case "worker-shutdown":
		retryReason = "retry"
	case "intermittent-task":
		retryReason = "task-retry"
	}
	s.resolveRun(t, runID, "exception", req.Reason, retryReason)
	r := t.Runs[runID]
	if len(t.Runs)-1 > runID+1 || r.State != "exception" || r.ReasonResolved != req.Reason {
		return nil, errorf("RequestConflict", "Run %d on task `%s` is resolved or not running.", runID, t.ID)
	}
	if len(t.Runs)-1 == runID+1 {
		if next := t.Runs[runID+1]; next.State == "pending" && (next.ReasonCreated == "retry" || next.ReasonCreated == "task-retry") {
			s.publish("task-pending", t, publishOpts{runID: runID + 1, withTags: true})
			return statusResponse{Status: t.status()}, nil
		}
	}
	s.publish("task-exception", t, publishOpts{runID: runID, withTags: true, workerGroup: r.WorkerGroup, workerID: r.WorkerID})
	s.resolveDependents(t.ID, "exception")
	return statusResponse{Status: t.status()}, nil
}

// reclaimResponse is task-reclaim-response.json.
type reclaimResponse struct {
	Status      taskStatus      `json:"status"`
	RunID       int             `json:"runId"`
	WorkerGroup string          `json:"workerGroup"`
	WorkerID    string          `json:"workerId"`
	TakenUntil  string          `json:"takenUntil"`
	Credentials taskCredentials `json:"credentials"`
}

func (s *Server) reclaimTask(c *call) (any, *apiError) {
	t, runID, aerr := s.lockedRun(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	now := s.now()
	if !t.Deadline.After(now) {
		return nil, errorf("RequestConflict", "Task `%s` can't be reclaimed past its deadline of %s.", t.ID, formatTime(t.Deadline))
	}
	takenUntil := now.Add(s.claimTimeout)
	r := t.Runs[runID]
	if runID == len(t.Runs)-1 && r.State == "running" {
		if takenUntil.After(r.TakenUntil) {
			r.TakenUntil = takenUntil
		}
	}
	if r.WorkerGroup != "" {
		s.workerSeen(t.Def.TaskQueueID, r.WorkerGroup, r.WorkerID, nil)
	}
	if runID != len(t.Runs)-1 || r.State != "running" {
		return nil, errorf("RequestConflict", "Run %d on task `%s` is resolved or not running.", runID, t.ID)
	}
	creds, err := s.runCredentials(t.ID, runID, r.WorkerGroup, r.WorkerID, takenUntil, t.Def.Scopes)
	if err != nil {
		return nil, errorf("InternalServerError", "%v", err)
	}
	return reclaimResponse{
		Status:      t.status(),
		RunID:       runID,
		WorkerGroup: r.WorkerGroup,
		WorkerID:    r.WorkerID,
		TakenUntil:  formatTime(takenUntil),
		Credentials: creds,
	}, nil
}
