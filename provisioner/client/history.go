package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// PoolPoint is a pool's figures over one bucket of its history: the
// highest value of each figure among the samples in the bucket, so that a
// short peak is not averaged away.
type PoolPoint struct {
	// At is the start of the bucket.
	At time.Time `json:"at"`
	// Samples is how many samples the bucket holds.
	Samples int `json:"samples"`
	// Pending is null when no sample of the bucket could read it;
	// PendingUnknown counts the bucket's samples that could not.
	Pending        *int64 `json:"pending"`
	PendingUnknown int    `json:"pendingUnknown"`
	Assigned       int    `json:"assigned"`
	Busy           int    `json:"busy"`
	Idle           int    `json:"idle"`
	Quarantined    int    `json:"quarantined"`
	Offline        int    `json:"offline"`
	Target         int    `json:"target"`
	Recommended    int    `json:"recommended"`
}

// DurationBin is one bar of a task-duration histogram: runs that took at
// least MinSeconds and less than MaxSeconds (MaxSeconds 0: no upper bound).
type DurationBin struct {
	Label      string  `json:"label"`
	MinSeconds float64 `json:"minSeconds"`
	MaxSeconds float64 `json:"maxSeconds"`
	Runs       int     `json:"runs"`
}

// DurationHistogram is how long a pool's runs took over a range.
type DurationHistogram struct {
	Runs          int           `json:"runs"`
	MedianSeconds float64       `json:"medianSeconds"`
	P90Seconds    float64       `json:"p90Seconds"`
	Bins          []DurationBin `json:"bins"`
}

// PoolHistory answers GET /api/v1/pools/{poolId}/history.
type PoolHistory struct {
	PoolID        string            `json:"poolId"`
	From          time.Time         `json:"from"`
	To            time.Time         `json:"to"`
	BucketSeconds int64             `json:"bucketSeconds"`
	Points        []PoolPoint       `json:"points"`
	Durations     DurationHistogram `json:"durations"`
}

// StateSpan is a machine's state over [From, To).
type StateSpan struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
}

// RunSpan is one run a machine ran. Result is the result the machine
// reported (completed, failed, exception), "running" for the current
// run, and empty when no report came (a runner that does not report).
type RunSpan struct {
	TaskID   string    `json:"taskId"`
	RunID    int       `json:"runId"`
	Pool     string    `json:"poolId,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Result   string    `json:"result,omitempty"`
	// Reason is the reported reasonResolved of an exception.
	Reason string `json:"reason,omitempty"`
}

// RebootMark is a reboot on a machine's timeline: Kind "boot" when the
// machine registered (once per boot), "requested" for a reboot directive.
type RebootMark struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Who  string    `json:"who,omitempty"`
	Why  string    `json:"why,omitempty"`
}

// MachineTimeline answers GET /api/v1/machines/{id}/timeline.
type MachineTimeline struct {
	MachineID string       `json:"machineId"`
	From      time.Time    `json:"from"`
	To        time.Time    `json:"to"`
	States    []StateSpan  `json:"states"`
	Runs      []RunSpan    `json:"runs"`
	Reboots   []RebootMark `json:"reboots"`
}

// PoolHistory returns a pool's history over the last span ("24h", "7d"
// or a Go duration; empty for 24 h).
func (c *Client) PoolHistory(ctx context.Context, poolID, span string) (*PoolHistory, error) {
	var out PoolHistory
	return &out, c.do(ctx, http.MethodGet, "/api/v1/pools/"+esc(poolID)+"/history", rangeQuery(span), nil, &out)
}

// MachineTimeline returns a machine's states, runs and reboots over the
// last span ("24h", "7d" or a Go duration; empty for 24 h).
func (c *Client) MachineTimeline(ctx context.Context, machineID, span string) (*MachineTimeline, error) {
	var out MachineTimeline
	return &out, c.do(ctx, http.MethodGet, "/api/v1/machines/"+esc(machineID)+"/timeline", rangeQuery(span), nil, &out)
}

func rangeQuery(span string) url.Values {
	if span == "" {
		return nil
	}
	return url.Values{"range": {span}}
}
