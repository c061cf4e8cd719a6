package devqueue

import (
	"sort"
	"strconv"
	"time"
)

// taskQueueSeen upserts the task queue record (task_queue_seen): expires
// never moves backward. Call it under s.mu.
func (s *Server) taskQueueSeen(id string, expires time.Time) {
	q := s.queue(id)
	if !q.seen || expires.After(q.expires) {
		q.expires = expires
	}
	q.seen = true
	q.lastDateActive = s.now()
}

// taskQueueResponse is taskqueue-response.json.
type taskQueueResponse struct {
	TaskQueueID    string `json:"taskQueueId"`
	Description    string `json:"description"`
	Stability      string `json:"stability"`
	Expires        string `json:"expires"`
	LastDateActive string `json:"lastDateActive"`
}

func taskQueueJSON(q *taskQueue) taskQueueResponse {
	return taskQueueResponse{
		TaskQueueID:    q.id,
		Description:    "",
		Stability:      "experimental",
		Expires:        formatTime(q.expires),
		LastDateActive: formatTime(q.lastDateActive),
	}
}

func (s *Server) getTaskQueue(c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[c.params["taskQueueId"]]
	if q == nil || !q.seen || !q.expires.After(s.now()) {
		return nil, errorf("ResourceNotFound", "Task queue with `%s` not found. Are you sure it was created?", c.params["taskQueueId"])
	}
	return taskQueueJSON(q), nil
}

type listTaskQueuesResponse struct {
	TaskQueues        []taskQueueResponse `json:"taskQueues"`
	ContinuationToken string              `json:"continuationToken,omitempty"`
}

func (s *Server) listTaskQueues(c *call) (any, *apiError) {
	offset, limit, aerr := c.paging(1000, 1000)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var live []*taskQueue
	for _, q := range s.queues {
		if q.seen && q.expires.After(now) {
			live = append(live, q)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].id < live[j].id })
	res := listTaskQueuesResponse{TaskQueues: []taskQueueResponse{}}
	offset = min(offset, len(live))
	end := min(offset+limit, len(live))
	for _, q := range live[offset:end] {
		res.TaskQueues = append(res.TaskQueues, taskQueueJSON(q))
	}
	if end < len(live) {
		res.ContinuationToken = strconv.Itoa(end)
	}
	return res, nil
}
