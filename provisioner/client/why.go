package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WhyAnswer answers GET /api/v1/why: where a task is and, when it waits,
// what could run it and why that does not.
type WhyAnswer struct {
	// TaskID is the task asked about (found from the build for a
	// builder/build-number query); Build is that build when asked so.
	TaskID string    `json:"taskId,omitempty"`
	Build  *BuildRef `json:"build,omitempty"`
	// State is the task's state in the queue (unscheduled, pending,
	// running, completed, failed, exception), "unknown" when the queue
	// could not be asked, or "canary" for a black-hole canary, which runs
	// with no queue.
	State string `json:"state"`
	// Summary is the answer in one sentence; Explanation adds the detail
	// a person reads next, in order.
	Summary     string   `json:"summary"`
	Explanation []string `json:"explanation"`
	Task        *WhyTask `json:"task,omitempty"`
	Runs        []WhyRun `json:"runs"`
	// Pools are the pools that serve the task (its task queue, or the
	// builder of its build request) with each of their machines.
	Pools []WhyPool `json:"pools"`
	// Elsewhere are machines that fit a serving pool's constraints but
	// serve another pool or none.
	Elsewhere []WhyMachine `json:"elsewhere"`
	// Bridges is each bridge instance's view of the task.
	Bridges []WhyBridge `json:"bridges"`
	// Errors say what could not be asked (the queue, a bridge).
	Errors []string `json:"errors,omitempty"`
}

// BuildRef names a Buildbot build.
type BuildRef struct {
	Builder string `json:"builder"`
	Number  int    `json:"number"`
}

// WhyTask is the task's definition, as far as the answer needs it.
type WhyTask struct {
	Name         string    `json:"name"`
	TaskQueueID  string    `json:"taskQueueId"`
	Priority     string    `json:"priority"`
	Created      time.Time `json:"created"`
	Deadline     time.Time `json:"deadline"`
	Dependencies []string  `json:"dependencies,omitempty"`
	// Builder is payload.buildername of a bridge-routed task.
	Builder string `json:"builder,omitempty"`
}

// WhyRun is one run of the task and the machine that ran it.
type WhyRun struct {
	RunID          int        `json:"runId"`
	State          string     `json:"state"`
	ReasonCreated  string     `json:"reasonCreated,omitempty"`
	ReasonResolved string     `json:"reasonResolved,omitempty"`
	Scheduled      *time.Time `json:"scheduled,omitempty"`
	Started        *time.Time `json:"started,omitempty"`
	Resolved       *time.Time `json:"resolved,omitempty"`
	WorkerGroup    string     `json:"workerGroup,omitempty"`
	WorkerID       string     `json:"workerId,omitempty"`
	// MachineID is the labrunner machine that ran it (for a bridged task,
	// the one that claimed its build request), empty when none did.
	MachineID string `json:"machineId,omitempty"`
}

// WhyPool is a pool that serves the task and what its machines are doing.
type WhyPool struct {
	PoolID string `json:"poolId"`
	// Via says how it serves the task: "task queue <id>" or "builder <name>".
	Via         string       `json:"via"`
	MaxCapacity int          `json:"maxCapacity"`
	Counts      WhyCounts    `json:"counts"`
	Machines    []WhyMachine `json:"machines"`
}

// WhyCounts counts a pool's machines by what keeps them from the task.
type WhyCounts struct {
	Assigned    int `json:"assigned"`
	Idle        int `json:"idle"`
	Busy        int `json:"busy"`
	Quarantined int `json:"quarantined"`
	Offline     int `json:"offline"`
	Draining    int `json:"draining"`
	Starting    int `json:"starting"`
}

// WhyMachine is one machine and why it is not running the task: Status is
// idle, busy, quarantined, offline, draining or starting; Reason says it
// in words (the quarantine's reason, the task it runs, its last heartbeat).
type WhyMachine struct {
	MachineID string `json:"machineId"`
	PoolID    string `json:"poolId,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
}

// WhyBridge is one bridge instance's view of the task (or the error
// asking it).
type WhyBridge struct {
	Name  string          `json:"name"`
	Error string          `json:"error,omitempty"`
	View  *BridgeTaskView `json:"view,omitempty"`
}

// BridgeTaskView is what a bridge records of a task (the bridge's
// GET /api/v1/tasks/{taskId}).
type BridgeTaskView struct {
	Instance    string          `json:"instance"`
	TaskID      string          `json:"taskId"`
	TaskQueueID string          `json:"taskQueueId"`
	Row         *BridgeTaskRow  `json:"row"`
	Requests    []BridgeRequest `json:"requests"`
}

// BridgeTaskRow is the bridge DB's row of a task it tracks.
type BridgeTaskRow struct {
	RunID          int    `json:"runId"`
	BuildRequestID *int64 `json:"buildRequestId"`
	State          string `json:"state"`
	ProcessedDate  int64  `json:"processedDate"`
	TakenUntil     *int64 `json:"takenUntil"`
	LeaseOwner     string `json:"leaseOwner,omitempty"`
}

// BridgeRequest is a SchedulerDB build request with its builds.
type BridgeRequest struct {
	ID          int64         `json:"id"`
	Builder     string        `json:"builder"`
	Priority    int           `json:"priority"`
	SubmittedAt int64         `json:"submittedAt"`
	ClaimedBy   string        `json:"claimedBy,omitempty"`
	ClaimedAt   int64         `json:"claimedAt"`
	Complete    bool          `json:"complete"`
	Result      string        `json:"result,omitempty"`
	CompleteAt  *int64        `json:"completeAt,omitempty"`
	Builds      []BridgeBuild `json:"builds"`
}

// BridgeBuild is one Buildbot build of a request.
type BridgeBuild struct {
	Number     int    `json:"number"`
	StartTime  int64  `json:"startTime"`
	FinishTime *int64 `json:"finishTime"`
}

// WhyTask asks where a task is and why it is not running.
func (c *Client) WhyTask(ctx context.Context, taskID string) (*WhyAnswer, error) {
	var out WhyAnswer
	return &out, c.do(ctx, http.MethodGet, "/api/v1/why", url.Values{"taskId": {taskID}}, nil, &out)
}

// WhyBuild asks the same about the task of a Buildbot build.
func (c *Client) WhyBuild(ctx context.Context, builder string, number int) (*WhyAnswer, error) {
	var out WhyAnswer
	return &out, c.do(ctx, http.MethodGet, "/api/v1/why", url.Values{"builder": {builder}, "build": {strconv.Itoa(number)}}, nil, &out)
}
