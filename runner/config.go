// Package runner is the machine's life around the agent: boot and
// between-task checks, health with hysteresis, the reboot policy and its
// boot-loop guard, quarantine, the state file, the local control API,
// `runner status` and the watchdog.
package runner

// The runner's configuration is the `runner:` section of the agent's YAML
// file (docs/config.md). The section is cut out before the agent's strict
// parser sees the rest, so each side validates its own keys and one run
// lists every problem of both.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
)

// Config is the `runner:` section.
type Config struct {
	// ControlSocket is the control channel's path (a pipe name on Windows).
	ControlSocket string `yaml:"controlSocket"`
	// StateFile is the JSON state file (default <stateDir>/runner-state.json).
	StateFile string `yaml:"stateFile"`
	// MetricsListen, when set, also serves /metrics (and nothing else) on
	// this TCP address.
	MetricsListen string `yaml:"metricsListen"`
	// DrainGrace is how long a stop waits for running tasks before they are
	// resolved exception/worker-shutdown (default 10m).
	DrainGrace Duration `yaml:"drainGrace"`
	// Checks configures the checks directory and the built-in checks.
	Checks ChecksConfig `yaml:"checks"`
	// Reboot is the reboot policy.
	Reboot RebootConfig `yaml:"reboot"`
	// Quarantine is the quarantine policy.
	Quarantine QuarantineConfig `yaml:"quarantine"`
	// Watchdog restarts a wedged agent loop.
	Watchdog WatchdogConfig `yaml:"watchdog"`
	// Provisioner, when its url is set, registers the machine and takes
	// the pool, root URL and credentials from the provisioner.
	Provisioner ProvisionerConfig `yaml:"provisioner"`
	// Source is the kind of work: taskcluster (default), buildbot or both.
	Source string `yaml:"source"`
	// Buildbot is the bridge to claim Buildbot builds from.
	Buildbot BuildbotConfig `yaml:"buildbot"`
}

// ChecksConfig configures the checks.
type ChecksConfig struct {
	// Dir holds executables run in name order at boot and between tasks.
	Dir string `yaml:"dir"`
	// Timeout bounds one try of one check (default 10m).
	Timeout Duration `yaml:"timeout"`
	// Tries is how many times a check that asks for RETRY runs (default 5).
	Tries int `yaml:"tries"`
	// RetryWait is the base of the jittered backoff between tries (default 5s).
	RetryWait Duration `yaml:"retryWait"`
	// Interval is how often the built-in checks run besides before each
	// claim (default 60s).
	Interval Duration `yaml:"interval"`
	// TripAfter is how many failures in a row trip a check (default 3).
	TripAfter int `yaml:"tripAfter"`
	// ClearAfter is how many passes in a row clear a tripped check (default 2).
	ClearAfter int `yaml:"clearAfter"`
	// DiskFreeMinMB is the free space needed on the tasks volume (default 10240).
	DiskFreeMinMB int64 `yaml:"diskFreeMinMB"`
	// MemFreeMinMB is the available memory needed (default 512).
	MemFreeMinMB int64 `yaml:"memFreeMinMB"`
	// CPUMaxPercent is the CPU use above which an idle machine is
	// saturated (default 100, i.e. off: an idle lab machine pegged by
	// something else is worth knowing about, but set it per pool).
	CPUMaxPercent float64 `yaml:"cpuMaxPercent"`
	// MaxClockSkew is the largest tolerated difference from the queue's
	// clock (default 5m; Hawk refuses past 15m).
	MaxClockSkew Duration `yaml:"maxClockSkew"`
	// KillLeftovers kills processes left behind by earlier tasks (default true).
	KillLeftovers *bool `yaml:"killLeftovers"`
}

// RebootConfig is the reboot policy.
type RebootConfig struct {
	// AfterEveryTask reboots after each task.
	AfterEveryTask bool `yaml:"afterEveryTask"`
	// AfterTasks reboots once this many tasks ran since boot (0: never).
	AfterTasks int `yaml:"afterTasks"`
	// MaxUptime reboots an idle machine up longer than this (0: never).
	MaxUptime Duration `yaml:"maxUptime"`
	// OnExitCodes reboots after a task whose last command exited with one of these.
	OnExitCodes []int `yaml:"onExitCodes"`
	// Command replaces the OS reboot (argv; the demo and tests use a harmless one).
	Command []string `yaml:"command"`
	// BootLoopMax is how many reboots within BootLoopWindow are allowed
	// before the next one becomes a quarantine (default 3).
	BootLoopMax int `yaml:"bootLoopMax"`
	// BootLoopWindow is the boot-loop guard's window (default 30m).
	BootLoopWindow Duration `yaml:"bootLoopWindow"`
}

// QuarantineConfig is the quarantine policy.
type QuarantineConfig struct {
	// AfterInfraFailures quarantines after this many infrastructure
	// failures in a row (default 3; 0 never).
	AfterInfraFailures int `yaml:"afterInfraFailures"`
	// FailuresFor is how long that quarantine lasts (default 1h).
	FailuresFor Duration `yaml:"failuresFor"`
	// BootLoopFor is how long a boot-loop quarantine lasts (default 2h).
	BootLoopFor Duration `yaml:"bootLoopFor"`
	// MirrorToQueue tells the queue with quarantineWorker (default true).
	MirrorToQueue *bool `yaml:"mirrorToQueue"`
}

// WatchdogConfig configures the watchdog.
type WatchdogConfig struct {
	// Timeout is how long an idle, healthy runner may go without a
	// successful claim or poll before its agent loop is restarted
	// (default 10m; "0s" disables).
	Timeout *Duration `yaml:"timeout"`
}

// Duration is a time.Duration written as "5s" or "2m30s" in YAML.
type Duration struct {
	time.Duration
	bad string
}

// UnmarshalYAML parses a Go duration; a bad one is kept for validation to
// report with the other problems.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.bad = n.Value
		return nil
	}
	d.Duration = v
	return nil
}

// Load reads the configuration file: the agent's keys and the runner's
// section. Problems of both are listed together in one *agent.ConfigError.
func Load(path string) (*agent.FileConfig, *Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &agent.ConfigError{Problems: []string{fmt.Sprintf("config file %s: %v; pass an existing file with --config", path, err)}}
	}
	return Parse(b)
}

// Parse parses configuration YAML with a `runner:` section.
func Parse(b []byte) (*agent.FileConfig, *Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, &agent.ConfigError{Problems: []string{fmt.Sprintf("config: not valid YAML: %v", err)}}
	}
	// The runner section is decoded from the file as written, so that
	// problems carry the file's line numbers; the other keys are the
	// agent's.
	var w struct {
		Runner Config               `yaml:"runner"`
		Other  map[string]yaml.Node `yaml:",inline"`
	}
	var probs []string
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, &agent.ConfigError{Problems: []string{fmt.Sprintf("config: not valid YAML: %v", err)}}
		}
		probs = agent.YAMLProblems(&doc, reflect.TypeOf(w), te.Errors)
	}
	rc := &w.Runner
	// With a provisioner the pool, root URL and credentials are assigned.
	ac, err := agent.ParseConfigWith(b, agent.ParseOptions{Assigned: rc.Provisioner.Enabled(), Sections: []string{"runner"}})
	var ce *agent.ConfigError
	switch {
	case errors.As(err, &ce):
		probs = append(ce.Problems, probs...)
	case err != nil:
		return nil, nil, err
	}
	// The state directory gives the runner's defaults; when the rest of
	// the file has mistakes, read it from the file as written so that
	// they do not also show up as a missing stateDir.
	stateDir := topLevelScalar(&doc, "stateDir")
	if ac != nil {
		stateDir = ac.StateDir
	}
	rc.applyDefaults(stateDir)
	probs = append(probs, rc.validate()...)
	if len(probs) > 0 {
		return nil, nil, &agent.ConfigError{Problems: probs}
	}
	return ac, rc, nil
}

func (c *Config) applyDefaults(stateDir string) {
	if c.ControlSocket == "" && stateDir != "" {
		c.ControlSocket = platform.DefaultControlPath(stateDir)
	}
	if c.StateFile == "" && stateDir != "" {
		c.StateFile = filepath.Join(stateDir, "runner-state.json")
	}
	def := func(d *Duration, v time.Duration) {
		if d.Duration == 0 && d.bad == "" {
			d.Duration = v
		}
	}
	def(&c.DrainGrace, 10*time.Minute)
	def(&c.Checks.Timeout, 10*time.Minute)
	def(&c.Checks.RetryWait, 5*time.Second)
	def(&c.Checks.Interval, time.Minute)
	def(&c.Checks.MaxClockSkew, 5*time.Minute)
	def(&c.Reboot.BootLoopWindow, 30*time.Minute)
	def(&c.Quarantine.FailuresFor, time.Hour)
	def(&c.Quarantine.BootLoopFor, 2*time.Hour)
	if c.Checks.Tries == 0 {
		c.Checks.Tries = 5
	}
	if c.Checks.TripAfter == 0 {
		c.Checks.TripAfter = 3
	}
	if c.Checks.ClearAfter == 0 {
		c.Checks.ClearAfter = 2
	}
	if c.Checks.DiskFreeMinMB == 0 {
		c.Checks.DiskFreeMinMB = 10240
	}
	if c.Checks.MemFreeMinMB == 0 {
		c.Checks.MemFreeMinMB = 512
	}
	if c.Checks.CPUMaxPercent == 0 {
		c.Checks.CPUMaxPercent = 100
	}
	if c.Checks.KillLeftovers == nil {
		t := true
		c.Checks.KillLeftovers = &t
	}
	if c.Reboot.BootLoopMax == 0 {
		c.Reboot.BootLoopMax = 3
	}
	if c.Quarantine.AfterInfraFailures == 0 {
		c.Quarantine.AfterInfraFailures = 3
	}
	if c.Quarantine.MirrorToQueue == nil {
		t := true
		c.Quarantine.MirrorToQueue = &t
	}
	if c.Watchdog.Timeout == nil {
		c.Watchdog.Timeout = &Duration{Duration: 10 * time.Minute}
	}
}

func (c *Config) validate() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	durations := []struct {
		key string
		d   Duration
	}{
		{"runner.drainGrace", c.DrainGrace}, {"runner.checks.timeout", c.Checks.Timeout},
		{"runner.checks.retryWait", c.Checks.RetryWait}, {"runner.checks.interval", c.Checks.Interval},
		{"runner.checks.maxClockSkew", c.Checks.MaxClockSkew}, {"runner.reboot.maxUptime", c.Reboot.MaxUptime},
		{"runner.reboot.bootLoopWindow", c.Reboot.BootLoopWindow}, {"runner.quarantine.failuresFor", c.Quarantine.FailuresFor},
		{"runner.quarantine.bootLoopFor", c.Quarantine.BootLoopFor}, {"runner.watchdog.timeout", *c.Watchdog.Timeout},
	}
	for _, d := range durations {
		switch {
		case d.d.bad != "":
			add("%s: %q is not a duration; write e.g. \"30s\" or \"10m\"", d.key, d.d.bad)
		case d.d.Duration < 0:
			add("%s: %s is negative; use a positive duration or remove the key for the default", d.key, d.d.Duration)
		}
	}
	if c.Checks.Interval.Duration > 0 && c.Checks.Interval.Duration < time.Second {
		add("runner.checks.interval: %s is too short; use 1s or more", c.Checks.Interval.Duration)
	}
	for key, n := range map[string]int{"runner.checks.tries": c.Checks.Tries, "runner.checks.tripAfter": c.Checks.TripAfter,
		"runner.checks.clearAfter": c.Checks.ClearAfter, "runner.reboot.bootLoopMax": c.Reboot.BootLoopMax} {
		if n < 1 {
			add("%s: %d; use 1 or more", key, n)
		}
	}
	if c.Reboot.AfterTasks < 0 {
		add("runner.reboot.afterTasks: %d; use 0 (never) or more", c.Reboot.AfterTasks)
	}
	if c.Quarantine.AfterInfraFailures < 0 {
		add("runner.quarantine.afterInfraFailures: %d; use 0 (never) or more", c.Quarantine.AfterInfraFailures)
	}
	if c.Checks.DiskFreeMinMB < 0 || c.Checks.MemFreeMinMB < 0 {
		add("runner.checks.diskFreeMinMB/memFreeMinMB: negative; use 0 or more megabytes")
	}
	if c.Checks.CPUMaxPercent < 0 || c.Checks.CPUMaxPercent > 100 {
		add("runner.checks.cpuMaxPercent: %g; use a percentage from 1 to 100", c.Checks.CPUMaxPercent)
	}
	if len(c.Reboot.Command) > 0 && c.Reboot.Command[0] == "" {
		add("runner.reboot.command: the program is empty; give an argv list like [\"/usr/local/bin/fake-reboot\"] or remove the key")
	}
	if c.Checks.Dir != "" {
		if fi, err := os.Stat(c.Checks.Dir); err != nil || !fi.IsDir() {
			add("runner.checks.dir: %q is not a directory; create it or remove the key", c.Checks.Dir)
		}
	}
	if c.StateFile == "" || c.ControlSocket == "" {
		add("runner.stateFile, runner.controlSocket: no default without stateDir; set stateDir")
	}
	p = append(p, c.Provisioner.Problems()...)
	p = append(p, c.sourceProblems()...)
	return p
}

// topLevelScalar returns the value of a top-level key of doc, or "".
func topLevelScalar(doc *yaml.Node, key string) string {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}
