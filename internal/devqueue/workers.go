package devqueue

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// workerKey identifies a queue worker record.
type workerKey struct {
	TaskQueueID, WorkerGroup, WorkerID string
}

type taskRun struct {
	TaskID string `json:"taskId"`
	RunID  int    `json:"runId"`
}

// worker is the queue's record of a worker (queue_workers).
type worker struct {
	QuarantineUntil time.Time
	Expires         time.Time
	FirstClaim      time.Time
	LastDateActive  time.Time
	RecentTasks     []taskRun
}

// workerSeen upserts the worker record as queue_worker_seen_with_last_date_active
// does; a nil expires means now + 1 day (workerinfo.js seen). Call it under
// s.mu.
func (s *Server) workerSeen(tqID, workerGroup, workerID string, expiresIn *time.Time) *worker {
	now := s.now()
	expires := now.Add(24 * time.Hour)
	if expiresIn != nil {
		// Taken as given, like the real queue: client-go's zero
		// WorkerRequest.Expires (year 1) declares an already expired worker,
		// which can still be quarantined but is otherwise invisible.
		expires = *expiresIn
	}
	s.taskQueueSeen(tqID, expires)
	k := workerKey{tqID, workerGroup, workerID}
	w, ok := s.workers[k]
	if !ok {
		w = &worker{
			QuarantineUntil: now.AddDate(-10, 0, 0),
			Expires:         expires,
			FirstClaim:      now,
			LastDateActive:  now,
			RecentTasks:     []taskRun{},
		}
		s.workers[k] = w
		return w
	}
	if expires.After(w.Expires) {
		w.Expires = expires
	}
	w.LastDateActive = now
	return w
}

// workerTaskSeen appends to recentTasks, keeping the last 20.
func (s *Server) workerTaskSeen(tqID, workerGroup, workerID, taskID string, runID int) {
	w := s.workers[workerKey{tqID, workerGroup, workerID}]
	if w == nil {
		return
	}
	if len(w.RecentTasks) > 19 {
		w.RecentTasks = append([]taskRun{}, w.RecentTasks[1:]...)
	}
	w.RecentTasks = append(w.RecentTasks, taskRun{TaskID: taskID, RunID: runID})
}

// workerResponse is worker-response.json.
type workerResponse struct {
	ProvisionerID   string    `json:"provisionerId"`
	WorkerType      string    `json:"workerType"`
	TaskQueueID     string    `json:"taskQueueId"`
	WorkerGroup     string    `json:"workerGroup"`
	WorkerID        string    `json:"workerId"`
	RecentTasks     []taskRun `json:"recentTasks"`
	Expires         string    `json:"expires"`
	QuarantineUntil string    `json:"quarantineUntil"`
	FirstClaim      string    `json:"firstClaim"`
	LastDateActive  string    `json:"lastDateActive,omitempty"`
	Actions         []any     `json:"actions"`
}

func workerJSON(k workerKey, w *worker) workerResponse {
	prov, wt, _ := strings.Cut(k.TaskQueueID, "/")
	return workerResponse{
		ProvisionerID:   prov,
		WorkerType:      wt,
		TaskQueueID:     k.TaskQueueID,
		WorkerGroup:     k.WorkerGroup,
		WorkerID:        k.WorkerID,
		RecentTasks:     append([]taskRun{}, w.RecentTasks...),
		Expires:         formatTime(w.Expires),
		QuarantineUntil: formatTime(w.QuarantineUntil),
		FirstClaim:      formatTime(w.FirstClaim),
		LastDateActive:  optTime(w.LastDateActive),
		Actions:         []any{},
	}
}

func (c *call) workerKey() workerKey {
	return workerKey{c.params["provisionerId"] + "/" + c.params["workerType"], c.params["workerGroup"], c.params["workerId"]}
}

func workerNotFound(k workerKey) *apiError {
	prov, wt, _ := strings.Cut(k.TaskQueueID, "/")
	return errorf("ResourceNotFound", "Worker with workerId `%s`, workerGroup `%s`,worker-type `%s` and provisionerId `%s` not found. Are you sure it was created?", k.WorkerID, k.WorkerGroup, wt, prov)
}

func (s *Server) getWorker(c *call) (any, *apiError) {
	k := c.workerKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	w := s.workers[k]
	// Workers are not expired until their quarantine ends.
	if w == nil || (w.Expires.Before(now) && w.QuarantineUntil.Before(now)) {
		return nil, workerNotFound(k)
	}
	return workerJSON(k, w), nil
}

func (s *Server) quarantineWorker(c *call) (any, *apiError) {
	var req struct {
		QuarantineUntil string `json:"quarantineUntil"`
	}
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	until, aerr := parseTime("quarantineUntil", req.QuarantineUntil)
	if aerr != nil {
		return nil, aerr
	}
	k := c.workerKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workers[k]
	if w == nil {
		// The real queue does not create workers here: declareWorker or a
		// claimWork must come first.
		return nil, errorf("ResourceNotFound", "Worker with workerId `%s`, workerGroup `%s`,worker-type `%s` and provisionerId `%s` not found.", k.WorkerID, k.WorkerGroup, c.params["workerType"], c.params["provisionerId"])
	}
	w.QuarantineUntil = until
	if min := s.now().Add(24 * time.Hour); w.Expires.Before(min) {
		w.Expires = min
	}
	return workerJSON(k, w), nil
}

func (s *Server) declareWorker(c *call) (any, *apiError) {
	var req struct {
		Expires *string `json:"expires"`
	}
	if aerr := c.decode(&req); aerr != nil {
		return nil, aerr
	}
	var expires *time.Time
	if req.Expires != nil {
		e, aerr := parseTime("expires", *req.Expires)
		if aerr != nil {
			return nil, aerr
		}
		expires = &e
	}
	k := c.workerKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workerSeen(k.TaskQueueID, k.WorkerGroup, k.WorkerID, expires)
	return workerJSON(k, w), nil
}

// listWorkersEntry is one entry of list-workers-response.json.
type listWorkersEntry struct {
	WorkerGroup     string   `json:"workerGroup"`
	WorkerID        string   `json:"workerId"`
	QuarantineUntil string   `json:"quarantineUntil,omitempty"`
	FirstClaim      string   `json:"firstClaim"`
	LatestTask      *taskRun `json:"latestTask,omitempty"`
	LastDateActive  string   `json:"lastDateActive,omitempty"`
}

type listWorkersResponse struct {
	Workers           []listWorkersEntry `json:"workers"`
	ContinuationToken string             `json:"continuationToken,omitempty"`
}

func (s *Server) listWorkers(c *call) (any, *apiError) {
	quarantined := c.r.URL.Query().Get("quarantined")
	if quarantined != "" && quarantined != "true" && quarantined != "false" {
		return nil, errorf("InvalidRequestArguments", "query parameter quarantined=%q must be true or false", quarantined)
	}
	offset, limit, aerr := c.paging(1000, 1000)
	if aerr != nil {
		return nil, aerr
	}
	tqID := c.params["provisionerId"] + "/" + c.params["workerType"]
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []workerKey
	for k := range s.workers {
		if k.TaskQueueID == tqID {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].WorkerGroup != keys[j].WorkerGroup {
			return keys[i].WorkerGroup < keys[j].WorkerGroup
		}
		return keys[i].WorkerID < keys[j].WorkerID
	})
	res := listWorkersResponse{Workers: []listWorkersEntry{}}
	// Like the real queue, the page is cut before filtering.
	end := min(offset+limit, len(keys))
	if offset > len(keys) {
		offset = len(keys)
	}
	now := s.now()
	for _, k := range keys[offset:end] {
		w := s.workers[k]
		q := !w.QuarantineUntil.Before(now)
		if (quarantined == "true" && !q) || (quarantined == "false" && q) {
			continue
		}
		if w.Expires.Before(now) && !q {
			continue
		}
		e := listWorkersEntry{WorkerGroup: k.WorkerGroup, WorkerID: k.WorkerID, FirstClaim: formatTime(w.FirstClaim), LastDateActive: optTime(w.LastDateActive)}
		if n := len(w.RecentTasks); n > 0 {
			lt := w.RecentTasks[n-1]
			e.LatestTask = &lt
		}
		if w.QuarantineUntil.After(now) {
			e.QuarantineUntil = formatTime(w.QuarantineUntil)
		}
		res.Workers = append(res.Workers, e)
	}
	if end < len(keys) {
		res.ContinuationToken = strconv.Itoa(end)
	}
	return res, nil
}
