package devqueue

import (
	"time"
)

// taskClaim is one entry of claim-work-response.json.
type taskClaim struct {
	Status      taskStatus      `json:"status"`
	RunID       int             `json:"runId"`
	WorkerGroup string          `json:"workerGroup"`
	WorkerID    string          `json:"workerId"`
	TakenUntil  string          `json:"takenUntil"`
	Task        taskDef         `json:"task"`
	Credentials taskCredentials `json:"credentials"`
}

type claimWorkResponse struct {
	Tasks []taskClaim `json:"tasks"`
}

// claimWork long-polls for up to PollWait. It returns as soon as at least
// one run could be claimed: createTask, retries and reruns close the task
// queue's wake channel, so waiting costs nothing and wakes at once. A
// request whose connection closes while waiting claims nothing.
func (s *Server) claimWork(c *call) (any, *apiError) {
	var req struct {
		WorkerGroup string `json:"workerGroup"`
		WorkerID    string `json:"workerId"`
		Tasks       int    `json:"tasks"`
	}
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	tqID := c.params["taskQueueId"]
	ctx := c.r.Context()
	empty := claimWorkResponse{Tasks: []taskClaim{}}

	s.mu.Lock()
	w := s.workers[workerKey{tqID, req.WorkerGroup, req.WorkerID}]
	quarantined := w != nil && w.QuarantineUntil.After(s.now())
	s.workerSeen(tqID, req.WorkerGroup, req.WorkerID, nil)
	s.mu.Unlock()

	timer := time.NewTimer(s.pollWait)
	defer timer.Stop()
	if quarantined {
		// Sleep so a quarantined worker cannot spin on claimWork.
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
		return empty, nil
	}
	for {
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			return empty, nil
		}
		q := s.queue(tqID)
		claims, err := s.claimPending(q, req.Tasks, req.WorkerGroup, req.WorkerID)
		wake := q.wake
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(claims) > 0 {
			return claimWorkResponse{Tasks: claims}, nil
		}
		s.waiting.Add(1)
		select {
		case <-wake:
			s.waiting.Add(-1)
		case <-timer.C:
			s.waiting.Add(-1)
			return empty, nil
		case <-ctx.Done():
			s.waiting.Add(-1)
			return empty, nil
		}
	}
}

// claimPending claims up to n pending runs of q for the worker; call it
// under s.mu.
func (s *Server) claimPending(q *taskQueue, n int, workerGroup, workerID string) ([]taskClaim, *apiError) {
	now := s.now()
	var claims []taskClaim
	for len(claims) < n {
		refs := q.popPending(n - len(claims))
		if len(refs) == 0 {
			break
		}
		for _, ref := range refs {
			t := ref.t
			if !ref.live() || !t.Deadline.After(now) {
				// Pending messages expire at the deadline in the real queue;
				// the deadline resolver resolves the run.
				continue
			}
			// workclaimer.js: takenUntil = now + claimTimeout.
			takenUntil := now.Add(s.claimTimeout)
			r := t.Runs[ref.runID]
			r.State = "running"
			r.WorkerGroup = workerGroup
			r.WorkerID = workerID
			r.Started = now
			r.TakenUntil = takenUntil
			creds, err := s.runCredentials(t.ID, ref.runID, workerGroup, workerID, takenUntil, t.Def.Scopes)
			if err != nil {
				return claims, errorf("InternalServerError", "%v", err)
			}
			s.publish("task-running", t, publishOpts{runID: ref.runID, workerGroup: workerGroup, workerID: workerID, takenUntil: takenUntil})
			s.workerTaskSeen(q.id, workerGroup, workerID, t.ID, ref.runID)
			claims = append(claims, taskClaim{
				Status:      t.status(),
				RunID:       ref.runID,
				WorkerGroup: workerGroup,
				WorkerID:    workerID,
				TakenUntil:  formatTime(takenUntil),
				Task:        t.Def,
				Credentials: creds,
			})
		}
	}
	return claims, nil
}

// WaitingClaims is how many claimWork calls are blocked in the long poll.
// A worker that gives up a claim closes its connection, and the server
// notices a moment later: tests that need "no claim anywhere" wait for 0.
func (s *Server) WaitingClaims() int64 { return s.waiting.Load() }
