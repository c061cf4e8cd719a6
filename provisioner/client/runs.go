package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Results of a finished run (RunReport.Result), as the queue resolves it.
const (
	ResultCompleted = "completed"
	ResultFailed    = "failed"
	ResultException = "exception"
)

// MaxRunReports is the most runs one POST /api/v1/machines/{id}/runs
// carries; a runner with more sends them in several requests.
const MaxRunReports = 100

// MaxRunLog is the most a run report's Log may hold, in bytes (UTF-8):
// the tail of a canary's output, enough for its last few hundred lines.
const MaxRunLog = 64 << 10

// RunReport is one finished run as its machine reports it. A run is
// counted once: the provisioner keys it by machine, task, run, kind and
// build number, so a report sent again (a retry after a lost answer) is a
// duplicate, not a second run.
type RunReport struct {
	TaskID      string `json:"taskId"`
	RunID       int    `json:"runId"`
	Kind        string `json:"kind,omitempty"`
	Builder     string `json:"builder,omitempty"`
	BuildNumber int    `json:"buildNumber,omitempty"`
	// Result is completed, failed or exception.
	Result string `json:"result"`
	// Reason is the queue's reasonResolved for an exception
	// (malformed-payload, internal-error, canceled, ...); empty otherwise.
	Reason string `json:"reason,omitempty"`
	// ExitCode is the task command's exit code, left out when no command
	// ran to its end.
	ExitCode *int      `json:"exitCode,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Log is the tail of a canary's log (kind canary only: a queue run's
	// log is the queue's artifact), at most MaxRunLog bytes: the output an
	// operator reads to see why the canary failed.
	Log string `json:"log,omitempty"`
}

// RunReportsRequest is the body of POST /api/v1/machines/{id}/runs.
type RunReportsRequest struct {
	Runs []RunReport `json:"runs"`
}

// RunReportsResponse says how many runs were new and how many had been
// reported before.
type RunReportsResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// ReportRuns sends finished runs (at most MaxRunReports); sending the same
// runs again is harmless.
func (c *Client) ReportRuns(ctx context.Context, machineID string, runs []RunReport) (*RunReportsResponse, error) {
	var out RunReportsResponse
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/runs", nil, RunReportsRequest{Runs: runs}, &out)
}

// BlackHolePolicy sets how the provisioner finds a pool's black holes:
// machines that fail tasks which pass elsewhere (docs/provisioner.md,
// "Black holes"). Every field left out takes its documented default.
type BlackHolePolicy struct {
	// Disabled turns detection off for the pool.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// Window is how far back runs are read (default 24h).
	Window string `json:"window,omitempty" yaml:"window,omitempty"`
	// RecentRuns is how many of a machine's latest runs are judged
	// (default 20); MinRuns the fewest judged at all (default 5).
	RecentRuns int `json:"recentRuns,omitempty" yaml:"recentRuns,omitempty"`
	MinRuns    int `json:"minRuns,omitempty" yaml:"minRuns,omitempty"`
	// MinFailureRate is the share of its judged runs a machine must fail
	// for the failure-rate signal (default 0.5).
	MinFailureRate float64 `json:"minFailureRate,omitempty" yaml:"minFailureRate,omitempty"`
	// Significance is the largest one-sided binomial p-value a signal may
	// have against the rest of the pool (default 1e-6).
	Significance float64 `json:"significance,omitempty" yaml:"significance,omitempty"`
	// FastFraction: a failure shorter than this share of the pool's
	// median duration for its kind of work is a fast failure (default 0.1).
	FastFraction float64 `json:"fastFraction,omitempty" yaml:"fastFraction,omitempty"`
	// MinEvidence is the fewest fast failures, or failures that passed on
	// another machine, that make a signal (default 3).
	MinEvidence int `json:"minEvidence,omitempty" yaml:"minEvidence,omitempty"`
	// PoolFailureCeiling: when the rest of the pool fails at least this
	// share of its runs, the failures are the tasks', and nobody is
	// quarantined (default 0.5).
	PoolFailureCeiling float64 `json:"poolFailureCeiling,omitempty" yaml:"poolFailureCeiling,omitempty"`
	// MaxQuarantinedShare caps the pool's machines quarantined by the
	// detector at once (default 0.1; at least one machine).
	MaxQuarantinedShare float64 `json:"maxQuarantinedShare,omitempty" yaml:"maxQuarantinedShare,omitempty"`
	// QuarantineFor is how long a black hole stays quarantined (default 24h).
	QuarantineFor string `json:"quarantineFor,omitempty" yaml:"quarantineFor,omitempty"`
	// Canary, when set, is a task payload (generic-worker's, as the
	// agent runs) that a black hole runs when its quarantine ends: a
	// completed run releases it, any other result quarantines it again.
	Canary json.RawMessage `json:"canary,omitempty" yaml:"-"`
}
