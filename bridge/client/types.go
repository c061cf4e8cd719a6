// Package client is the Go client of the bridge's master API, which lets a
// labrunner agent take the place of a Buildbot master for bridge-routed
// builders: claim a build request, heartbeat while the build runs (learning
// of cancellation), and report the result. It also holds the wire types.
package client

import "encoding/json"

// ClaimRequest asks for the best pending request of one of Builders.
type ClaimRequest struct {
	// WorkerID is the agent's name; it becomes claimed_by_name.
	WorkerID string `json:"workerId"`
	// Incarnation distinguishes this run of the agent (claimed_by_incarnation);
	// a new incarnation may take over the requests an old one left claimed.
	// Empty lets the bridge choose one, returned in the Build.
	Incarnation string `json:"incarnation,omitempty"`
	// Builders the agent can run.
	Builders []string `json:"builders"`
	// Wait is how many seconds the bridge may hold the call while nothing
	// is pending (at most 60).
	Wait int `json:"wait,omitempty"`
}

// Build is a claimed request and what to run for it.
type Build struct {
	BuildID        int64                      `json:"buildId"`
	BuildNumber    int                        `json:"buildNumber"`
	BuildRequestID int64                      `json:"buildRequestId"`
	BuilderName    string                     `json:"builderName"`
	TaskID         string                     `json:"taskId,omitempty"`
	Incarnation    string                     `json:"incarnation"`
	Properties     map[string]json.RawMessage `json:"properties"`
	Steps          []Step                     `json:"steps"`
	Env            map[string]string          `json:"env,omitempty"`
	// MaxRunTime bounds the build, in seconds.
	MaxRunTime int `json:"maxRunTime"`
}

// Step is one command, with %(prop:name)s already interpolated.
type Step struct {
	Name    string   `json:"name,omitempty"`
	Command []string `json:"command"`
}

// ClaimResponse carries the claimed build, or none when nothing was pending.
type ClaimResponse struct {
	Build *Build `json:"build"`
}

// HeartbeatRequest keeps a build's claim fresh.
type HeartbeatRequest struct {
	WorkerID    string `json:"workerId"`
	Incarnation string `json:"incarnation"`
	BuildID     int64  `json:"buildId"`
}

// HeartbeatResponse tells the agent whether to stop the build.
type HeartbeatResponse struct {
	Cancelled bool   `json:"cancelled"`
	Reason    string `json:"reason,omitempty"`
}

// Buildbot result codes an agent reports.
const (
	Success   = 0
	Warnings  = 1
	Failure   = 2
	Skipped   = 3
	Exception = 4
	Retry     = 5
	Cancelled = 6
)

// FinishRequest reports a build's result, its properties and its log.
type FinishRequest struct {
	WorkerID    string `json:"workerId"`
	Incarnation string `json:"incarnation"`
	BuildID     int64  `json:"buildId"`
	// Result is a Buildbot result code (Success … Cancelled).
	Result int `json:"result"`
	// Properties the build set, added to the buildset's.
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
	// LogURL is where the build's log was uploaded.
	LogURL string `json:"logUrl,omitempty"`
}

// FinishResponse lists the requests the finish completed or re-queued.
type FinishResponse struct {
	BuildRequestIDs []int64 `json:"buildRequestIds"`
}

// PendingResponse counts pending requests per builder, for the provisioner.
type PendingResponse struct {
	Builders map[string]int `json:"builders"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
