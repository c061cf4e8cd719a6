package devqueue

import (
	"encoding/json"
	"time"
)

// priorities lists task priorities from highest to lowest; a task queue is
// served in this order, FIFO within one priority (workclaimer.js).
var priorities = []string{"highest", "very-high", "high", "medium", "low", "very-low", "lowest"}

func priorityIndex(p string) int {
	for i, q := range priorities {
		if q == p {
			return i
		}
	}
	return len(priorities) - 1
}

// taskDef is a stored task definition, serialized exactly as the queue's
// Task.definition() does (task.json).
type taskDef struct {
	ProvisionerID string            `json:"provisionerId"`
	WorkerType    string            `json:"workerType"`
	TaskQueueID   string            `json:"taskQueueId"`
	SchedulerID   string            `json:"schedulerId"`
	ProjectID     string            `json:"projectId"`
	TaskGroupID   string            `json:"taskGroupId"`
	Dependencies  []string          `json:"dependencies"`
	Requires      string            `json:"requires"`
	Routes        []string          `json:"routes"`
	Priority      string            `json:"priority"`
	Retries       int               `json:"retries"`
	Created       string            `json:"created"`
	Deadline      string            `json:"deadline"`
	Expires       string            `json:"expires"`
	Scopes        []string          `json:"scopes"`
	Payload       json.RawMessage   `json:"payload"`
	Metadata      taskMetadata      `json:"metadata"`
	Tags          map[string]string `json:"tags"`
	Extra         json.RawMessage   `json:"extra"`
}

type taskMetadata struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Owner       string `json:"owner"`
	Source      string `json:"source"`
}

// run is one attempt at a task; the zero time means "not set".
type run struct {
	State          string
	ReasonCreated  string
	ReasonResolved string
	WorkerGroup    string
	WorkerID       string
	TakenUntil     time.Time
	Scheduled      time.Time
	Started        time.Time
	Resolved       time.Time
}

// task is a task with its runs and artifacts.
type task struct {
	ID       string
	Def      taskDef
	Canon    []byte // canonical JSON of Def, for createTask idempotency
	Deadline time.Time
	Expires  time.Time

	RetriesLeft int
	Runs        []*run

	// Blocking holds the dependencies that are not yet satisfied.
	Blocking map[string]bool

	// Artifacts by runId, then name.
	Artifacts map[int]map[string]*artifact

	// DeadlineDone is set once the deadline resolver has handled the task.
	DeadlineDone bool
	// EverResolved is set at the task's first resolution; the task group is
	// resolved when all its tasks have it.
	EverResolved bool
}

func (t *task) state() string {
	if len(t.Runs) == 0 {
		return "unscheduled"
	}
	return t.Runs[len(t.Runs)-1].State
}

func (t *task) lastRun() *run {
	if len(t.Runs) == 0 {
		return nil
	}
	return t.Runs[len(t.Runs)-1]
}

// taskStatus is task-status.json.
type taskStatus struct {
	TaskID        string      `json:"taskId"`
	ProvisionerID string      `json:"provisionerId"`
	WorkerType    string      `json:"workerType"`
	TaskQueueID   string      `json:"taskQueueId"`
	SchedulerID   string      `json:"schedulerId"`
	ProjectID     string      `json:"projectId"`
	TaskGroupID   string      `json:"taskGroupId"`
	Deadline      string      `json:"deadline"`
	Expires       string      `json:"expires"`
	RetriesLeft   int         `json:"retriesLeft"`
	State         string      `json:"state"`
	Runs          []runStatus `json:"runs"`
}

type runStatus struct {
	RunID          int    `json:"runId"`
	State          string `json:"state"`
	ReasonCreated  string `json:"reasonCreated"`
	ReasonResolved string `json:"reasonResolved,omitempty"`
	WorkerGroup    string `json:"workerGroup,omitempty"`
	WorkerID       string `json:"workerId,omitempty"`
	TakenUntil     string `json:"takenUntil,omitempty"`
	Scheduled      string `json:"scheduled"`
	Started        string `json:"started,omitempty"`
	Resolved       string `json:"resolved,omitempty"`
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// status snapshots the task's status structure; call it under the lock.
func (t *task) status() taskStatus {
	runs := make([]runStatus, len(t.Runs))
	for i, r := range t.Runs {
		runs[i] = runStatus{
			RunID:          i,
			State:          r.State,
			ReasonCreated:  r.ReasonCreated,
			ReasonResolved: r.ReasonResolved,
			WorkerGroup:    r.WorkerGroup,
			WorkerID:       r.WorkerID,
			TakenUntil:     optTime(r.TakenUntil),
			Scheduled:      formatTime(r.Scheduled),
			Started:        optTime(r.Started),
			Resolved:       optTime(r.Resolved),
		}
	}
	return taskStatus{
		TaskID:        t.ID,
		ProvisionerID: t.Def.ProvisionerID,
		WorkerType:    t.Def.WorkerType,
		TaskQueueID:   t.Def.TaskQueueID,
		SchedulerID:   t.Def.SchedulerID,
		ProjectID:     t.Def.ProjectID,
		TaskGroupID:   t.Def.TaskGroupID,
		Deadline:      formatTime(t.Deadline),
		Expires:       formatTime(t.Expires),
		RetriesLeft:   t.RetriesLeft,
		State:         t.state(),
		Runs:          runs,
	}
}

// statusResponse is task-status-response.json.
type statusResponse struct {
	Status taskStatus `json:"status"`
}
