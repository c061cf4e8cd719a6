package runner

import (
	"fmt"
	"strings"
	"time"
)

// LinkStatus is the provisioner connection as `runner status` shows it.
type LinkStatus struct {
	URL string `json:"url"`
	// Identity is how the machine registers: "enrollment-token" or "ec2".
	Identity  string `json:"identity"`
	MachineID string `json:"machineId,omitempty"`
	PoolID    string `json:"poolId,omitempty"`
	// Source and Builders are the pool's kind of work (taskcluster,
	// buildbot or both) and its Buildbot builders.
	Source     string   `json:"source,omitempty"`
	Builders   []string `json:"builders,omitempty"`
	Registered bool     `json:"registered"`
	// Connected means the last call to the provisioner succeeded.
	Connected         bool       `json:"connected"`
	LastContact       *time.Time `json:"lastContact,omitempty"`
	LastError         string     `json:"lastError,omitempty"`
	LastErrorAt       *time.Time `json:"lastErrorAt,omitempty"`
	LastDirective     int64      `json:"lastDirective"`
	CredentialsExpire *time.Time `json:"credentialsExpire,omitempty"`
}

// Summary renders the status on one line for `runner status`.
func (s LinkStatus) Summary(now time.Time) string {
	var b strings.Builder
	switch {
	case !s.Registered:
		fmt.Fprintf(&b, "not registered with %s (%s)", s.URL, s.Identity)
	case s.Connected:
		fmt.Fprintf(&b, "connected to %s as %s", s.URL, s.MachineID)
	default:
		fmt.Fprintf(&b, "DISCONNECTED from %s as %s", s.URL, s.MachineID)
	}
	if s.Registered {
		pool := s.PoolID
		if pool == "" {
			pool = "none yet"
		}
		fmt.Fprintf(&b, ", pool %s", pool)
		if s.Source == SourceBuildbot || s.Source == SourceBoth {
			fmt.Fprintf(&b, " (%s: %s)", s.Source, strings.Join(s.Builders, ", "))
		}
	}
	if s.LastContact != nil {
		fmt.Fprintf(&b, ", last contact %s ago", now.Sub(*s.LastContact).Round(time.Second))
	}
	if s.CredentialsExpire != nil {
		fmt.Fprintf(&b, ", credentials expire %s", s.CredentialsExpire.UTC().Format(time.RFC3339))
	}
	if s.LastError != "" && !s.Connected {
		fmt.Fprintf(&b, "; last error: %s", s.LastError)
	}
	return b.String()
}

// linkStateVersion is the state file's format version.
const linkStateVersion = 1
