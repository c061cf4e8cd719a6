package devqueue

import (
	"strconv"
)

// claimTask is the deprecated claimTask endpoint (api.js claimTask,
// workclaimer.js claimTask) that the Buildbot Bridge uses to claim one given
// run when Buildbot starts its build:
//
//	task past its deadline             -> RequestConflict
//	worker quarantined                 -> {} and nothing recorded
//	run missing                        -> ResourceNotFound
//	latest run pending                 -> running, claimed by this worker
//	latest run running by this worker  -> the same claim again (a retried call succeeds)
//	anything else                      -> RequestConflict
func (s *Server) claimTask(c *call) (any, *apiError) {
	var req struct {
		WorkerGroup string `json:"workerGroup"`
		WorkerID    string `json:"workerId"`
	}
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	t, aerr := s.lockedTask(c)
	if aerr != nil {
		return nil, aerr
	}
	defer s.mu.Unlock()
	now := s.now()
	if !t.Deadline.After(now) {
		return nil, errorf("RequestConflict", "Task `%s` can't be claimed past its deadline of %s.", t.ID, formatTime(t.Deadline))
	}
	tqID := t.Def.TaskQueueID
	if w := s.workers[workerKey{tqID, req.WorkerGroup, req.WorkerID}]; w != nil && w.QuarantineUntil.After(now) {
		return struct{}{}, nil
	}
	s.workerSeen(tqID, req.WorkerGroup, req.WorkerID, nil)
	runID, err := strconv.Atoi(c.params["runId"])
	if err != nil || runID < 0 || runID >= len(t.Runs) {
		return nil, errorf("ResourceNotFound", "Run %s not found on task `%s`.", c.params["runId"], t.ID)
	}
	r := t.Runs[runID]
	if runID == len(t.Runs)-1 && r.State == "pending" {
		// workclaimer.js: now + claimTimeout; its "round up to a second"
		// rounds getSeconds(), an integer, so milliseconds stay (as in
		// claimWork).
		takenUntil := now.Add(s.claimTimeout)
		r.State = "running"
		r.WorkerGroup = req.WorkerGroup
		r.WorkerID = req.WorkerID
		r.Started = now
		r.TakenUntil = takenUntil
	}
	if runID != len(t.Runs)-1 || r.State != "running" || r.WorkerGroup != req.WorkerGroup || r.WorkerID != req.WorkerID {
		return nil, errorf("RequestConflict", "Run %d was already claimed by another worker.", runID)
	}
	creds, cerr := s.runCredentials(t.ID, runID, r.WorkerGroup, r.WorkerID, r.TakenUntil, t.Def.Scopes)
	if cerr != nil {
		return nil, errorf("InternalServerError", "%v", cerr)
	}
	// The real queue publishes task-running even when the call repeats an
	// existing claim.
	s.publish("task-running", t, publishOpts{runID: runID, workerGroup: r.WorkerGroup, workerID: r.WorkerID, takenUntil: r.TakenUntil})
	s.workerTaskSeen(tqID, r.WorkerGroup, r.WorkerID, t.ID, runID)
	return taskClaim{
		Status:      t.status(),
		RunID:       runID,
		WorkerGroup: r.WorkerGroup,
		WorkerID:    r.WorkerID,
		TakenUntil:  formatTime(r.TakenUntil),
		Task:        t.Def,
		Credentials: creds,
	}, nil
}
