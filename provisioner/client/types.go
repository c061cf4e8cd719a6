package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// Facts describes a machine as its runner reports it at registration.
type Facts struct {
	Hostname      string            `json:"hostname"`
	OS            string            `json:"os"`
	OSVersion     string            `json:"osVersion,omitempty"`
	Arch          string            `json:"arch,omitempty"`
	Model         string            `json:"model,omitempty"`
	CPUs          int               `json:"cpus,omitempty"`
	MemoryMB      int64             `json:"memoryMB,omitempty"`
	DiskGB        int64             `json:"diskGB,omitempty"`
	Serial        string            `json:"serial,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	InstanceType  string            `json:"instanceType,omitempty"`
	Region        string            `json:"region,omitempty"`
	AMI           string            `json:"ami,omitempty"`
	InstanceID    string            `json:"instanceId,omitempty"`
	AvailabilityZ string            `json:"availabilityZone,omitempty"`
}

// EC2Identity is the IMDSv2 instance identity document with its signature,
// the proof of identity of an AWS instance.
type EC2Identity struct {
	// Document is the raw JSON of /latest/dynamic/instance-identity/document.
	Document string `json:"document"`
	// Signature is the base64 of /latest/dynamic/instance-identity/signature
	// (RSA PKCS#1 v1.5 over SHA-256 of Document).
	Signature string `json:"signature"`
}

// RegisterRequest is the body of POST /api/v1/machines/register. Exactly one
// of EnrollmentToken and EC2 proves the machine's identity.
type RegisterRequest struct {
	Facts           Facts        `json:"facts"`
	EnrollmentToken string       `json:"enrollmentToken,omitempty"`
	EC2             *EC2Identity `json:"ec2,omitempty"`
}

// TaskclusterCredentials are the temporary Taskcluster credentials a machine
// uses to claim work (client-go's tcclient.Credentials JSON form).
type TaskclusterCredentials struct {
	ClientID    string    `json:"clientId"`
	AccessToken string    `json:"accessToken"`
	Certificate string    `json:"certificate,omitempty"`
	Expires     time.Time `json:"expires"`
}

// Assignment is the pool a machine serves and what it needs to serve it.
type Assignment struct {
	// PoolID is empty while no pool fits the machine; it then waits for a
	// reassign directive.
	PoolID       string                  `json:"poolId"`
	Source       string                  `json:"source,omitempty"`
	TaskQueueID  string                  `json:"taskQueueId,omitempty"`
	Builders     []string                `json:"builders,omitempty"`
	WorkerGroup  string                  `json:"workerGroup,omitempty"`
	WorkerID     string                  `json:"workerId,omitempty"`
	WorkerConfig json.RawMessage         `json:"workerConfig,omitempty"`
	Reboot       *RebootPolicy           `json:"reboot,omitempty"`
	Health       *HealthPolicy           `json:"health,omitempty"`
	RootURL      string                  `json:"rootUrl,omitempty"`
	Credentials  *TaskclusterCredentials `json:"credentials,omitempty"`
}

// RegisterResponse answers a registration.
type RegisterResponse struct {
	MachineID string `json:"machineId"`
	// MachineToken authenticates the machine's own endpoints; the
	// provisioner keeps only its hash, so it is shown once.
	MachineToken string     `json:"machineToken"`
	Assignment   Assignment `json:"assignment"`
}

// Machine states a runner reports in heartbeats.
const (
	StateIdle      = "idle"
	StateBusy      = "busy"
	StateDraining  = "draining"
	StateRebooting = "rebooting"
	StateStarting  = "starting"
	// StateDrained means the runner follows a drain: it claims nothing and
	// runs nothing, so the provisioner may move it.
	StateDrained = "drained"
)

// Kinds of work a machine runs (TaskRef.Kind).
const (
	KindTaskcluster = "taskcluster"
	KindBuildbot    = "buildbot"
	// KindCanary is a black-hole quarantine's recovery probe: a pool's
	// canary payload run with no queue (RunReport.Kind only).
	KindCanary = "canary"
)

// TaskRef names one run of a task. A Buildbot build (Kind buildbot) also
// names its builder and build number; an empty Kind means taskcluster
// (runners older than the field send none).
type TaskRef struct {
	TaskID      string `json:"taskId"`
	RunID       int    `json:"runId"`
	Kind        string `json:"kind,omitempty"`
	Builder     string `json:"builder,omitempty"`
	BuildNumber int    `json:"buildNumber,omitempty"`
}

// Describe is the run as a person reads it: "buildbot <builder> #<n>"
// or "task <taskId>/<runId>".
func (t TaskRef) Describe() string {
	if t.Kind == KindBuildbot {
		return fmt.Sprintf("buildbot %s #%d", t.Builder, t.BuildNumber)
	}
	return fmt.Sprintf("task %s/%d", t.TaskID, t.RunID)
}

// HealthResult is one health check's outcome.
type HealthResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// HeartbeatRequest is the body of POST /api/v1/machines/{id}/heartbeat.
type HeartbeatRequest struct {
	State       string           `json:"state"`
	CurrentTask *TaskRef         `json:"currentTask,omitempty"`
	Health      []HealthResult   `json:"health,omitempty"`
	Counters    map[string]int64 `json:"counters,omitempty"`
}

// HeartbeatResponse answers a heartbeat with the directives waiting.
type HeartbeatResponse struct {
	Directives []Directive `json:"directives"`
}

// Directive kinds.
const (
	DirectiveReassign       = "reassign"
	DirectiveDrain          = "drain"
	DirectiveReboot         = "reboot"
	DirectiveQuarantine     = "quarantine"
	DirectiveUnquarantine   = "unquarantine"
	DirectiveCancelTask     = "cancel-task"
	DirectiveNewCredentials = "new-credentials"
)

// Directive is an instruction to a machine. IDs grow; a runner passes the
// last ID it handled as `after` and the provisioner forgets older ones.
type Directive struct {
	ID         int64       `json:"id"`
	Kind       string      `json:"kind"`
	Created    time.Time   `json:"created"`
	Reason     string      `json:"reason,omitempty"`
	Assignment *Assignment `json:"assignment,omitempty"`
	Task       *TaskRef    `json:"task,omitempty"`
	Until      *time.Time  `json:"until,omitempty"`
	// Credentials come with new-credentials directives.
	Credentials *TaskclusterCredentials `json:"credentials,omitempty"`
	// Canary, on a quarantine directive, is a task to run while
	// quarantined and report as a run of kind canary; its result decides
	// whether the quarantine ends (docs/provisioner.md, "Black holes").
	Canary *Canary `json:"canary,omitempty"`
}

// Canary is a recovery probe: a generic-worker payload, run once under
// TaskID with no queue behind it.
type Canary struct {
	TaskID  string          `json:"taskId"`
	Payload json.RawMessage `json:"payload"`
}

// DirectivesResponse answers GET /api/v1/machines/{id}/directives.
type DirectivesResponse struct {
	Directives []Directive `json:"directives"`
}

// Constraints select the machines a pool accepts; empty fields match all.
type Constraints struct {
	OS []string `json:"os,omitempty" yaml:"os,omitempty"`
	// OSVersion is a regular expression matched against the whole version.
	OSVersion string   `json:"osVersion,omitempty" yaml:"osVersion,omitempty"`
	Arch      []string `json:"arch,omitempty" yaml:"arch,omitempty"`
	Model     []string `json:"model,omitempty" yaml:"model,omitempty"`
	// Tags must all be present with these values.
	Tags map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// RebootPolicy tells the runner when to reboot between tasks.
type RebootPolicy struct {
	AfterTasks   int  `json:"afterTasks,omitempty" yaml:"afterTasks,omitempty"`
	OnTaskFailed bool `json:"onTaskFailure,omitempty" yaml:"onTaskFailure,omitempty"`
}

// HealthPolicy tells the runner when to quarantine itself.
type HealthPolicy struct {
	QuarantineAfterFailures int    `json:"quarantineAfterFailures,omitempty" yaml:"quarantineAfterFailures,omitempty"`
	MinFreeDiskGB           int    `json:"minFreeDiskGB,omitempty" yaml:"minFreeDiskGB,omitempty"`
	QuarantineFor           string `json:"quarantineFor,omitempty" yaml:"quarantineFor,omitempty"`
}

// Pool sources: the queue's task queue, the bridge's builders, or both
// (the runner claims from either in rotation).
const (
	SourceTaskcluster = "taskcluster"
	SourceBuildbot    = "buildbot"
	SourceBoth        = "both"
)

// HasTaskcluster says whether a pool of source claims from a task queue.
func HasTaskcluster(source string) bool {
	return source == SourceTaskcluster || source == SourceBoth
}

// HasBuildbot says whether a pool of source claims Buildbot builds.
func HasBuildbot(source string) bool {
	return source == SourceBuildbot || source == SourceBoth
}

// PoolSpec is what an operator writes for a pool (PUT body, YAML file).
type PoolSpec struct {
	Description  string        `json:"description,omitempty" yaml:"description,omitempty"`
	Source       string        `json:"source" yaml:"source"`
	TaskQueueID  string        `json:"taskQueueId,omitempty" yaml:"taskQueueId,omitempty"`
	Builders     []string      `json:"builders,omitempty" yaml:"builders,omitempty"`
	WorkerGroup  string        `json:"workerGroup,omitempty" yaml:"workerGroup,omitempty"`
	Constraints  Constraints   `json:"constraints,omitempty" yaml:"constraints,omitempty"`
	MinCapacity  int           `json:"minCapacity" yaml:"minCapacity"`
	MaxCapacity  int           `json:"maxCapacity" yaml:"maxCapacity"`
	Priority     int           `json:"priority,omitempty" yaml:"priority,omitempty"`
	ScalingRatio float64       `json:"scalingRatio,omitempty" yaml:"scalingRatio,omitempty"`
	Reboot       *RebootPolicy `json:"reboot,omitempty" yaml:"reboot,omitempty"`
	Health       *HealthPolicy `json:"health,omitempty" yaml:"health,omitempty"`
	// BlackHole tunes the detection of machines that fail what passes
	// elsewhere; left out, the defaults apply.
	BlackHole    *BlackHolePolicy `json:"blackHole,omitempty" yaml:"blackHole,omitempty"`
	WorkerConfig json.RawMessage  `json:"workerConfig,omitempty" yaml:"-"`
	// TargetWaitSeconds is the longest wait a task should see; sizing
	// recommends the capacity that keeps it (default 600).
	TargetWaitSeconds int `json:"targetWaitSeconds,omitempty" yaml:"targetWaitSeconds,omitempty"`
}

// Pool is a stored pool.
type Pool struct {
	PoolID  string    `json:"poolId"`
	Spec    PoolSpec  `json:"spec"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// PoolList answers GET /api/v1/pools.
type PoolList struct {
	Pools []Pool `json:"pools"`
}

// Machine is a machine as the registry knows it.
type Machine struct {
	MachineID         string           `json:"machineId"`
	PoolID            string           `json:"poolId"`
	MovingTo          string           `json:"movingTo,omitempty"`
	Facts             Facts            `json:"facts"`
	State             string           `json:"state"`
	Online            bool             `json:"online"`
	CurrentTask       *TaskRef         `json:"currentTask,omitempty"`
	Health            []HealthResult   `json:"health,omitempty"`
	Counters          map[string]int64 `json:"counters,omitempty"`
	Registered        time.Time        `json:"registered"`
	LastHeartbeat     *time.Time       `json:"lastHeartbeat,omitempty"`
	LastMoved         *time.Time       `json:"lastMoved,omitempty"`
	QuarantinedUntil  *time.Time       `json:"quarantinedUntil,omitempty"`
	QuarantineReason  string           `json:"quarantineReason,omitempty"`
	Draining          bool             `json:"draining"`
	CredentialsExpire *time.Time       `json:"credentialsExpire,omitempty"`
}

// MachineList answers GET /api/v1/machines.
type MachineList struct {
	Machines []Machine `json:"machines"`
}

// MachineDetail answers GET /api/v1/machines/{id}: the machine and its
// recorded actions, newest first.
type MachineDetail struct {
	Machine
	Actions []Action `json:"actions"`
	// LastCanary is the machine's latest black-hole canary run that the
	// provisioner still keeps (runRetention), with its log.
	LastCanary *RunReport `json:"lastCanary,omitempty"`
	// Warnings report side effects that failed (a quarantine not mirrored
	// to the queue); the action itself is recorded.
	Warnings []string `json:"warnings,omitempty"`
}

// Action is an operator's or the assigner's action on a machine.
type Action struct {
	Action string          `json:"action"`
	Who    string          `json:"who"`
	Why    string          `json:"why,omitempty"`
	At     time.Time       `json:"at"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// QuarantineRequest is the body of POST /api/v1/machines/{id}/quarantine.
type QuarantineRequest struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// ActionRequest is the body of reboot, drain and unquarantine actions. The
// body is required even without a reason: the client sends {} then.
type ActionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// AssignRequest is the body of POST /api/v1/machines/{id}/assign.
type AssignRequest struct {
	PoolID string `json:"poolId"`
	Reason string `json:"reason,omitempty"`
}

// Token kinds.
const (
	TokenAdmin    = "admin"
	TokenReadOnly = "readonly"
	TokenEnroll   = "enroll"
)

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Kind        string `json:"kind"`
	Uses        int    `json:"uses,omitempty"`
	ExpiresIn   string `json:"expiresIn,omitempty"`
	Description string `json:"description,omitempty"`
}

// TokenResponse carries a new token; it is shown once.
type TokenResponse struct {
	ID      string     `json:"id"`
	Kind    string     `json:"kind"`
	Token   string     `json:"token"`
	Uses    int        `json:"uses,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
}

// Sizing answers GET /api/v1/pools/{poolId}/sizing.
type Sizing struct {
	PoolID              string   `json:"poolId"`
	Pending             int64    `json:"pending"`
	Running             int      `json:"running"`
	Idle                int      `json:"idle"`
	Quarantined         int      `json:"quarantined"`
	Offline             int      `json:"offline"`
	Assigned            int      `json:"assigned"`
	Target              int      `json:"target"`
	MinCapacity         int      `json:"minCapacity"`
	MaxCapacity         int      `json:"maxCapacity"`
	WindowSeconds       int64    `json:"windowSeconds"`
	TasksInWindow       int      `json:"tasksInWindow"`
	MedianTaskSeconds   float64  `json:"medianTaskSeconds"`
	P90TaskSeconds      float64  `json:"p90TaskSeconds"`
	DrainSeconds        float64  `json:"estimatedDrainSeconds"`
	TargetWaitSeconds   int      `json:"targetWaitSeconds"`
	RecommendedCapacity int      `json:"recommendedCapacity"`
	Reasoning           []string `json:"reasoning"`
}

// Error is the body of every error answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending request field, when there is one.
	Field string `json:"field,omitempty"`
}
