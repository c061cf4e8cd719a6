package client

import (
	"context"
	"net/http"
	"time"
)

// Component health on the system map.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthDown     = "down"
	HealthUnknown  = "unknown"
)

// SystemMap answers GET /api/v1/system: every component labrunner's
// central side depends on, and its health as this replica sees it now.
type SystemMap struct {
	At         time.Time   `json:"at"`
	Replica    string      `json:"replica"`
	Components []Component `json:"components"`
}

// Component is one part of the system: Kind is queue, pulse, bridge,
// replica or database; Health one of ok, degraded, down, unknown.
type Component struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Health  string `json:"health"`
	Summary string `json:"summary"`
	// LatencyMS is how long the probe took (0 when none was made).
	LatencyMS float64 `json:"latencyMs"`
	Facts     []Fact  `json:"facts"`
	// LastError is the last error seen from it (by the probe or by this
	// replica's own calls), even if it has recovered since.
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// Fact is one named figure of a component.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// System returns the system map.
func (c *Client) System(ctx context.Context) (*SystemMap, error) {
	var out SystemMap
	return &out, c.do(ctx, http.MethodGet, "/api/v1/system", nil, nil, &out)
}
