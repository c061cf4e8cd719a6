package devqueue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// createRequest is create-task-request.json after schema validation.
type createRequest struct {
	ProvisionerID string            `json:"provisionerId"`
	WorkerType    string            `json:"workerType"`
	TaskQueueID   string            `json:"taskQueueId"`
	SchedulerID   *string           `json:"schedulerId"`
	ProjectID     string            `json:"projectId"`
	TaskGroupID   string            `json:"taskGroupId"`
	Dependencies  []string          `json:"dependencies"`
	Requires      string            `json:"requires"`
	Routes        []string          `json:"routes"`
	Priority      string            `json:"priority"`
	Retries       *int              `json:"retries"`
	Created       string            `json:"created"`
	Deadline      string            `json:"deadline"`
	Expires       string            `json:"expires"`
	Scopes        []string          `json:"scopes"`
	Payload       json.RawMessage   `json:"payload"`
	Metadata      taskMetadata      `json:"metadata"`
	Tags          map[string]string `json:"tags"`
	Extra         json.RawMessage   `json:"extra"`
}

func parseTime(field, v string) (time.Time, *apiError) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errorf("InputError", "`%s` is not an RFC 3339 date-time (%q); send e.g. 2026-01-02T15:04:05.000Z", field, v)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// canonicalJSON re-encodes a JSON value with sorted keys, so idempotency
// compares meaning rather than formatting.
func canonicalJSON(raw json.RawMessage, def string) (json.RawMessage, error) {
	if len(raw) == 0 {
		return json.RawMessage(def), nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// patchTaskDef applies the defaults and checks of api.js
// (patchAndValidateTaskDef and the taskQueueId transition rules).
func (s *Server) patchTaskDef(taskID string, req *createRequest) (*taskDef, time.Time, time.Time, *apiError) {
	d := &taskDef{
		ProvisionerID: req.ProvisionerID,
		WorkerType:    req.WorkerType,
		TaskQueueID:   req.TaskQueueID,
		SchedulerID:   "-",
		ProjectID:     req.ProjectID,
		TaskGroupID:   req.TaskGroupID,
		Dependencies:  req.Dependencies,
		Requires:      req.Requires,
		Routes:        req.Routes,
		Priority:      req.Priority,
		Retries:       5,
		Scopes:        req.Scopes,
		Metadata:      req.Metadata,
		Tags:          req.Tags,
	}
	switch {
	case d.ProvisionerID != "" && d.WorkerType != "" && d.TaskQueueID != "":
		if d.ProvisionerID+"/"+d.WorkerType != d.TaskQueueID {
			return nil, time.Time{}, time.Time{}, errorf("InputError", "taskQueueId must match \"provisionerId/workerType\" (got taskQueueId %q, provisionerId %q, workerType %q); send matching values or only taskQueueId", d.TaskQueueID, d.ProvisionerID, d.WorkerType)
		}
	case d.ProvisionerID != "" && d.WorkerType != "":
		d.TaskQueueID = d.ProvisionerID + "/" + d.WorkerType
	case d.TaskQueueID != "":
		d.ProvisionerID, d.WorkerType, _ = strings.Cut(d.TaskQueueID, "/")
	default:
		return nil, time.Time{}, time.Time{}, errorf("InputError", "at least a provisionerId and a workerType or a taskQueueId must be provided; set taskQueueId to \"<provisionerId>/<workerType>\"")
	}
	if req.SchedulerID != nil {
		d.SchedulerID = *req.SchedulerID
	}
	if d.ProjectID == "" {
		d.ProjectID = "none"
	}
	if d.TaskGroupID == "" {
		d.TaskGroupID = taskID
	}
	if d.Dependencies == nil {
		d.Dependencies = []string{}
	}
	if d.Requires == "" {
		d.Requires = "all-completed"
	}
	if d.Routes == nil {
		d.Routes = []string{}
	}
	if d.Priority == "" || d.Priority == "normal" {
		d.Priority = "lowest"
	}
	if req.Retries != nil {
		d.Retries = *req.Retries
	}
	if d.Scopes == nil {
		d.Scopes = []string{}
	}
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	var err error
	if d.Payload, err = canonicalJSON(req.Payload, "[]"); err != nil {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "payload: %v", err)
	}
	if d.Extra, err = canonicalJSON(req.Extra, "{}"); err != nil {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "extra: %v", err)
	}

	now := s.now()
	created, aerr := parseTime("created", req.Created)
	if aerr != nil {
		return nil, time.Time{}, time.Time{}, aerr
	}
	deadline, aerr := parseTime("deadline", req.Deadline)
	if aerr != nil {
		return nil, time.Time{}, time.Time{}, aerr
	}
	drift := 15 * time.Minute
	if created.Before(now.Add(-drift)) {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`created` cannot be in the past (max 15min drift); set created to the current time (got %s)", req.Created)
	}
	if created.After(now.Add(drift)) {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`created` cannot be in the future (max 15min drift); set created to the current time (got %s)", req.Created)
	}
	if created.After(deadline) {
		// The real queue's wording, which says the opposite of what it checks.
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`deadline` cannot be later than `created`; set deadline after created (created %s, deadline %s)", req.Created, req.Deadline)
	}
	if deadline.Before(now) {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`deadline` cannot be in the past; set deadline to a future time (got %s)", req.Deadline)
	}
	if deadline.Sub(now) > 5*24*time.Hour+drift {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`deadline` cannot be more than 5 days into the future; set deadline at most 5 days from now (got %s)", req.Deadline)
	}
	var expires time.Time
	if req.Expires == "" {
		expires = deadline.AddDate(1, 0, 0)
	} else if expires, aerr = parseTime("expires", req.Expires); aerr != nil {
		return nil, time.Time{}, time.Time{}, aerr
	}
	if deadline.After(expires) {
		return nil, time.Time{}, time.Time{}, errorf("InputError", "`expires` cannot be before `deadline`; set expires at or after the deadline (deadline %s, expires %s)", req.Deadline, formatTime(expires))
	}
	for _, sc := range d.Scopes {
		if strings.HasSuffix(sc, "**") {
			return nil, time.Time{}, time.Time{}, errorf("InputError", "scopes must not end with `**` (scope %q); end it with a single `*`", sc)
		}
	}
	d.Created = formatTime(created)
	d.Deadline = formatTime(deadline)
	d.Expires = formatTime(expires)
	return d, deadline, expires, nil
}

func (s *Server) createTask(c *call) (any, *apiError) {
	taskID := c.params["taskId"]
	var req createRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	def, deadline, expires, aerr := s.patchTaskDef(taskID, &req)
	if aerr != nil {
		return nil, aerr
	}
	canon, err := json.Marshal(def)
	if err != nil {
		return nil, errorf("InternalServerError", "encode task: %v", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.tasks[taskID]; ok {
		if !bytes.Equal(old.Canon, canon) {
			return nil, errorf("RequestConflict", "taskId `%s` already used by another task.\nThis could be the result of faulty idempotency!", taskID)
		}
		// The real queue announces the task again on an idempotent repeat
		// (it computes the "initial" status before noticing the task
		// exists), and run 0 again while it is pending.
		initial := old.status()
		initial.State, initial.Runs, initial.RetriesLeft = "unscheduled", []runStatus{}, old.Def.Retries
		s.publish("task-defined", old, publishOpts{runID: -1, withTags: true, status: &initial})
		if len(old.Runs) > 0 && old.Runs[0].State == "pending" {
			s.publish("task-pending", old, publishOpts{runID: 0, withTags: true})
		}
		return statusResponse{Status: old.status()}, nil
	}
	// All tasks of a group share a schedulerId (ensure_task_group).
	if sched, ok := s.groups[def.TaskGroupID]; ok && sched != def.SchedulerID {
		return nil, errorf("RequestConflict", "Task group `%s` contains tasks with a schedulerId other\nthan `%s`. All tasks in the same task-group must have\nthe same schedulerId.", def.TaskGroupID, def.SchedulerID)
	}
	t := &task{
		ID:          taskID,
		Def:         *def,
		Canon:       canon,
		Deadline:    deadline,
		Expires:     expires,
		RetriesLeft: def.Retries,
		Blocking:    map[string]bool{},
		Artifacts:   map[int]map[string]*artifact{},
	}
	if aerr := s.checkDependencies(t); aerr != nil {
		return nil, aerr
	}
	s.tasks[taskID] = t
	s.groups[def.TaskGroupID] = def.SchedulerID
	s.groupActive[def.TaskGroupID]++
	s.publish("task-defined", t, publishOpts{runID: -1, withTags: true})
	s.trackDependencies(t)
	if len(t.Blocking) == 0 {
		s.scheduleRun(t, "scheduled")
		s.publish("task-pending", t, publishOpts{runID: 0, withTags: true})
	}
	return statusResponse{Status: t.status()}, nil
}

// scheduleRun appends run 0 if the task has no runs (schedule_task); call it
// under s.mu.
func (s *Server) scheduleRun(t *task, reason string) bool {
	if len(t.Runs) != 0 {
		return false
	}
	t.Runs = append(t.Runs, &run{State: "pending", ReasonCreated: reason, Scheduled: s.now()})
	s.enqueuePending(t)
	return true
}

// checkDependencies rejects missing dependencies and ones expiring before
// the task's deadline, as dependencytracker.js trackDependencies does.
func (s *Server) checkDependencies(t *task) *apiError {
	var missing, expiring []string
	for _, dep := range t.Def.Dependencies {
		if dep == t.ID {
			continue // a task may depend on itself; it waits for scheduleTask
		}
		d, ok := s.tasks[dep]
		if !ok {
			missing = append(missing, dep)
			continue
		}
		if t.Deadline.After(d.Expires) {
			expiring = append(expiring, dep)
		}
	}
	if len(missing) == 0 && len(expiring) == 0 {
		return nil
	}
	var b strings.Builder
	if len(missing) > 0 {
		b.WriteString("`task.dependencies` references non-existing tasks: \n")
		for _, m := range missing {
			fmt.Fprintf(&b, " * %s\n", m)
		}
		b.WriteString("All taskIds in `task.dependencies` **must** exist\nbefore the task is created.\n")
	}
	if len(expiring) > 0 {
		b.WriteString("`task.dependencies` references tasks that expires\nbefore `task.deadline` this is not allowed, see tasks: \n")
		for _, m := range expiring {
			fmt.Fprintf(&b, " * %s,\n", m)
		}
		b.WriteString("All taskIds in `task.dependencies` **must** have\n`task.expires` greater than the `deadline` for this task.\n")
	}
	return &apiError{Code: "InputError", Message: b.String()}
}
