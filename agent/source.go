package agent

// A Source hands the agent claimed runs; a Run is one claimed run and the
// calls the agent makes about it until it is resolved:
//
//	Source.Claim ──▶ Run ──Reclaim (repeats)──▶ … ──Publish* ──▶ Resolve
//	                  │                 └─ ErrRunGone: cancelled or no longer ours; stop, report nothing
//	                  └─ Task / TaskID / RunID: what to run
//
// A Run may also have a KillGrace() time.Duration of its own, used in the
// place of the agent's when its processes are stopped (Buildbot builds).
//
// The Taskcluster queue is one source (tcsource.go); a local file is another
// (local.go); the Buildbot bridge will be a third.

import (
	"context"
	"errors"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// ErrRunGone means the run is no longer ours (cancelled, resolved, past its
// deadline or its claim taken over): the agent stops it and reports nothing.
var ErrRunGone = errors.New("run is no longer claimed by this worker")

// Source is where the agent claims work from.
type Source interface {
	// Claim claims up to max runs, blocking at most until ctx is done. An
	// empty result with a nil error means nothing was pending.
	Claim(ctx context.Context, max int) ([]Run, error)
}

// Run is one claimed run of a task.
type Run interface {
	// TaskID is the task's slugid.
	TaskID() string
	// RunID is the run's number.
	RunID() int
	// Task is the task definition as claimed.
	Task() *tcqueue.TaskDefinitionResponse
	// TakenUntil is when the current claim ends unless reclaimed.
	TakenUntil() time.Time
	// Credentials are the run's current temporary credentials (zero for
	// sources without them).
	Credentials() tcclient.Credentials
	// Reclaim extends the claim and rotates the credentials; ErrRunGone
	// means stop the run and report nothing. Sources without claims return
	// the unchanged TakenUntil.
	Reclaim(ctx context.Context) (time.Time, error)
	// Publish creates one artifact of the run.
	Publish(ctx context.Context, a RunArtifact) error
	// Resolve reports the run's result; ErrRunGone means the queue already
	// resolved it otherwise (e.g. cancelled).
	Resolve(ctx context.Context, r Resolution) error
	// Cancelled reports whether the queue has resolved the run as cancelled
	// or past its deadline, for sources that can tell.
	Cancelled(ctx context.Context) (bool, error)
}
