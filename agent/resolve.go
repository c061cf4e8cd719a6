package agent

// Resolution rules, decided by decide() (docs/payload.md):
//
//	all commands exit 0                  → completed
//	a command exits with a retry code    → exception/intermittent-task
//	a command exits non-zero             → failed
//	maxRunTime exceeded                  → failed (reason written to the log)
//	missing payload artifact             → failed (error artifact published)
//	a mount fails (fetch, digest, unpack) → failed (no command runs)
//	agent shutting down mid-task         → exception/worker-shutdown
//	disk/health refusal                  → exception/resource-unavailable
//	agent fault                          → exception/internal-error
//	payload fails validation             → exception/malformed-payload
//	cancelled / reclaim 409              → nothing reported

import (
	"errors"
	"fmt"
)

// Run states a Resolution can report.
const (
	StateCompleted = "completed"
	StateFailed    = "failed"
	StateException = "exception"
)

// Exception reasons the agent reports, as named by the queue's
// task-exception-request schema.
const (
	ReasonWorkerShutdown      = "worker-shutdown"
	ReasonMalformedPayload    = "malformed-payload"
	ReasonResourceUnavailable = "resource-unavailable"
	ReasonInternalError       = "internal-error"
	ReasonIntermittentTask    = "intermittent-task"
)

// Resolution is how a run ends.
type Resolution struct {
	// State is completed, failed or exception.
	State string
	// Reason is the exception reason; empty for completed and failed.
	Reason string
}

// String reads like the queue's "exception/worker-shutdown".
func (r Resolution) String() string {
	if r.Reason == "" {
		return r.State
	}
	return r.State + "/" + r.Reason
}

// Completed, Failed and Exception build resolutions.
var (
	Completed = Resolution{State: StateCompleted}
	Failed    = Resolution{State: StateFailed}
)

// Exception is an exception resolution with the given reason.
func Exception(reason string) Resolution { return Resolution{State: StateException, Reason: reason} }

// outcome is what running the commands produced, before mapping.
type outcome struct {
	exitCode      int  // the last command's exit code (-1 if none)
	timedOut      bool // maxRunTime exceeded
	shutdown      bool // the agent was stopping
	gone          bool // cancelled or reclaim 409
	internal      error
	resource      error
	malformed     error
	missingOutput bool  // a payload artifact was missing
	mountFailed   error // a mount could not be made or a cache kept
	userKept      bool  // processes of the task user survived it (agent/taskuser.go)
}

// decide maps an outcome to the resolution to report; ok is false when
// nothing must be reported.
func decide(o outcome, retryCodes []int) (Resolution, bool) {
	switch {
	case o.gone:
		return Resolution{}, false
	case o.malformed != nil:
		return Exception(ReasonMalformedPayload), true
	case o.shutdown:
		return Exception(ReasonWorkerShutdown), true
	case o.resource != nil:
		return Exception(ReasonResourceUnavailable), true
	case o.internal != nil:
		return Exception(ReasonInternalError), true
	case o.timedOut, o.mountFailed != nil:
		return Failed, true
	}
	if o.exitCode != 0 {
		for _, c := range retryCodes {
			if c == o.exitCode {
				return Exception(ReasonIntermittentTask), true
			}
		}
		return Failed, true
	}
	if o.missingOutput {
		return Failed, true
	}
	return Completed, true
}

// describe says in one line why the outcome resolves as it does, for the
// log footer.
func (o outcome) describe() string {
	switch {
	case o.gone:
		return "run cancelled or no longer claimed; nothing reported"
	case o.malformed != nil:
		var pe *PayloadError
		if errors.As(o.malformed, &pe) {
			return "malformed payload: " + plural(len(pe.Problems), "problem", "problems") + ", listed above"
		}
		return fmt.Sprintf("malformed payload: %v", o.malformed)
	case o.shutdown:
		return "worker shutting down"
	case o.resource != nil:
		return fmt.Sprintf("resource unavailable: %v", o.resource)
	case o.internal != nil:
		return fmt.Sprintf("internal error: %v", o.internal)
	case o.timedOut:
		return "max run time exceeded"
	case o.mountFailed != nil:
		return fmt.Sprintf("mounts: %v", o.mountFailed)
	case o.exitCode != 0:
		return fmt.Sprintf("exit code %d", o.exitCode)
	case o.missingOutput:
		return "a payload artifact is missing or not a file the task could read"
	}
	return "all commands exited 0"
}

// plural renders "1 problem", "2 problems".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
