package runner

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/labrunner/labrunner/provisioner/client"
)

// ProvisionerConfig is the `runner.provisioner` section of the
// configuration file (docs/config.md); the runner embeds it in Config.
type ProvisionerConfig struct {
	// URL is the provisioner's base URL; empty means static credentials.
	URL string `yaml:"url"`
	// EnrollmentToken proves the machine's identity off EC2.
	EnrollmentToken string `yaml:"enrollmentToken"`
	// StateFile is the link's state (default <stateDir>/provisioner-link.json).
	StateFile string `yaml:"stateFile"`
	// HeartbeatInterval is the time between heartbeats (default 30s).
	HeartbeatInterval Duration `yaml:"heartbeatInterval"`
	// PollWait is how long one directives long-poll waits (default 30s).
	PollWait Duration `yaml:"pollWait"`
	// IMDSEndpoint overrides the EC2 metadata address (tests).
	IMDSEndpoint string `yaml:"imdsEndpoint"`
}

// Enabled reports whether a provisioner is configured.
func (c ProvisionerConfig) Enabled() bool { return c.URL != "" }

// Problems lists the section's mistakes, each naming its key and the fix.
func (c ProvisionerConfig) Problems() []string {
	var out []string
	if p := provisionerURLProblem(c.URL); p != "" {
		out = append(out, p)
	}
	for key, d := range map[string]Duration{"heartbeatInterval": c.HeartbeatInterval, "pollWait": c.PollWait} {
		if d.bad != "" || d.Duration < 0 {
			out = append(out, fmt.Sprintf("runner.provisioner.%s: %q is not a positive duration: write e.g. 30s", key, d.bad+durationText(d)))
		}
	}
	slices.Sort(out)
	return out
}

func durationText(d Duration) string {
	if d.bad != "" {
		return ""
	}
	return d.Duration.String()
}

// LinkConfig collects the machine's facts (and, on EC2, its identity) and
// returns the link's configuration; the caller adds Snapshot, Handle,
// OnAssignment and Logger, then calls NewProvisionerLink.
func (c ProvisionerConfig) LinkConfig(ctx context.Context, stateDir string) (LinkConfig, error) {
	facts, ec2, err := MachineRegistration(ctx, c.IMDSEndpoint)
	if err != nil {
		return LinkConfig{}, err
	}
	return c.linkConfigFor(facts, ec2, stateDir), nil
}

// linkConfigFor is the link's configuration for a machine described by
// facts (and ec2, on EC2).
func (c ProvisionerConfig) linkConfigFor(facts client.Facts, ec2 *client.EC2Identity, stateDir string) LinkConfig {
	state := c.StateFile
	if state == "" && stateDir != "" {
		state = filepath.Join(stateDir, "provisioner-link.json")
	}
	return LinkConfig{
		URL: c.URL, EnrollmentToken: c.EnrollmentToken, EC2: ec2, Facts: facts, StatePath: state,
		HeartbeatInterval: c.HeartbeatInterval.Duration, PollWait: c.PollWait.Duration,
	}
}

// provisionerURLProblem checks runner.provisioner.url: https, or plain
// http only to a provisioner on this machine (devstack, tests), since the
// machine token travels in every request.
func provisionerURLProblem(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Sprintf("runner.provisioner.url %q: not an absolute URL; write https://provisioner.example.com", raw)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Sprintf("runner.provisioner.url %q: plain http would send the machine token unencrypted; use https://, or http:// only for a provisioner on this machine (127.0.0.1, ::1, localhost)", raw)
	}
	return ""
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
