package devqueue

import (
	"strings"
	"time"
)

// pendingRef points at a run that was pending when it was queued; it is
// stale (and skipped) once that run is no longer the task's pending run.
type pendingRef struct {
	t     *task
	runID int
}

// taskQueue holds a task queue's pending runs and wakes its long polls.
type taskQueue struct {
	id string
	// pending by priority index (0 = highest), FIFO within a priority.
	pending [7][]pendingRef
	// wake is closed (and replaced) when a run becomes pending, waking every
	// claimWork waiting on this queue at once.
	wake chan struct{}

	// The task_queues record, set once a worker has been seen on the
	// queue (claimWork, reclaimTask, declareWorker).
	seen           bool
	expires        time.Time
	lastDateActive time.Time
}

func (s *Server) queue(id string) *taskQueue {
	q, ok := s.queues[id]
	if !ok {
		q = &taskQueue{id: id, wake: make(chan struct{})}
		s.queues[id] = q
	}
	return q
}

func (r pendingRef) live() bool {
	return r.runID == len(r.t.Runs)-1 && r.t.Runs[r.runID].State == "pending"
}

// enqueuePending makes the task's latest (pending) run claimable; call it
// under s.mu.
func (s *Server) enqueuePending(t *task) {
	q := s.queue(t.Def.TaskQueueID)
	p := priorityIndex(t.Def.Priority)
	q.pending[p] = append(q.pending[p], pendingRef{t: t, runID: len(t.Runs) - 1})
	close(q.wake)
	q.wake = make(chan struct{})
}

// popPending removes and returns up to n live pending runs, highest
// priority first; call it under s.mu.
func (q *taskQueue) popPending(n int) []pendingRef {
	var out []pendingRef
	for p := range q.pending {
		list := q.pending[p]
		i := 0
		for ; i < len(list) && len(out) < n; i++ {
			if list[i].live() {
				out = append(out, list[i])
			}
		}
		// Drop the consumed prefix; clear references so tasks can be freed.
		for j := 0; j < i; j++ {
			list[j] = pendingRef{}
		}
		q.pending[p] = list[i:]
		if len(out) == n {
			break
		}
	}
	return out
}

// countPending returns the exact number of live pending runs, pruning stale
// entries as it goes; call it under s.mu.
func (q *taskQueue) countPending() int {
	n := 0
	for p := range q.pending {
		kept := q.pending[p][:0]
		for _, r := range q.pending[p] {
			if r.live() {
				kept = append(kept, r)
			}
		}
		for j := len(kept); j < len(q.pending[p]); j++ {
			q.pending[p][j] = pendingRef{}
		}
		q.pending[p] = kept
		n += len(kept)
	}
	return n
}

// pendingTasksResponse is pending-tasks-response.json.
type pendingTasksResponse struct {
	ProvisionerID string `json:"provisionerId"`
	WorkerType    string `json:"workerType"`
	TaskQueueID   string `json:"taskQueueId"`
	PendingTasks  int    `json:"pendingTasks"`
}

func (s *Server) pendingTasks(c *call) (any, *apiError) {
	tqID := c.params["taskQueueId"]
	prov, wt, _ := strings.Cut(tqID, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if q, ok := s.queues[tqID]; ok {
		n = q.countPending()
	}
	return pendingTasksResponse{ProvisionerID: prov, WorkerType: wt, TaskQueueID: tqID, PendingTasks: n}, nil
}
