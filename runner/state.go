package runner

// The state file is the runner's memory across crashes and reboots. It is
// rewritten whole after every change: temp file in the same directory,
// fsync, rename, fsync of the directory, so that a kill -9 or a power cut
// leaves either the old or the new state, never a torn one.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
)

// StateVersion is the state file's schema version.
const StateVersion = 1

// Phases of the runner, as shown by `runner status`.
const (
	PhaseStarting    = "starting"
	PhaseBooting     = "booting"
	PhaseIdle        = "idle"
	PhaseRunning     = "running"
	PhaseDraining    = "draining"
	PhaseDrained     = "drained"
	PhaseRebooting   = "rebooting"
	PhaseQuarantined = "quarantined"
	PhaseStopped     = "stopped"
)

// Quarantine sources.
const (
	SourceManual   = "manual"
	SourceHealth   = "health"
	SourceFailures = "failures"
	SourceBootLoop = "boot-loop"
	SourceCheck    = "check"
	// SourceProvisioner is a quarantine directive from the provisioner.
	SourceProvisioner = "provisioner"
)

// State is what the runner remembers; it is also the core of the status.
type State struct {
	Version int `json:"version"`
	// WorkerGroup, WorkerID and TaskQueueID name the machine to the queue.
	WorkerGroup string `json:"workerGroup"`
	WorkerID    string `json:"workerId"`
	TaskQueueID string `json:"taskQueueId"`
	// TaskUser is the account tasks run as (agent's taskUser).
	TaskUser string `json:"taskUser,omitempty"`
	// TaskUserKill is how per-task accounts' processes are killed
	// (platform.TaskUserKill's method; empty in other modes).
	TaskUserKill string `json:"taskUserKill,omitempty"`
	// Phase is starting, booting, idle, running, draining, drained,
	// rebooting, quarantined or stopped.
	Phase string `json:"state"`
	// Draining is set by `runner drain` (and a service stop) until `runner resume`.
	Draining bool `json:"draining"`
	// DrainReason says who asked for the drain and why.
	DrainReason string `json:"drainReason,omitempty"`
	// RunnerStarted is when this runner process started.
	RunnerStarted time.Time `json:"runnerStarted"`
	// UpdatedAt is when the file was last written.
	UpdatedAt time.Time `json:"updatedAt"`
	// TasksSinceBoot counts tasks since the last reboot (the reboot policy's counter).
	TasksSinceBoot int `json:"tasksSinceBoot"`
	// TasksTotal counts every task this machine ran.
	TasksTotal int `json:"tasksTotal"`
	// InfraFailuresInARow counts consecutive internal-error and
	// resource-unavailable resolutions.
	InfraFailuresInARow int `json:"infraFailuresInARow"`
	// CurrentTasks are the runs in progress.
	CurrentTasks []CurrentTask `json:"currentTasks"`
	// RecentTasks are the last 10 finished runs, newest first.
	RecentTasks []TaskRecord `json:"recentTasks"`
	// Quarantine is set while the machine is quarantined.
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	// RebootPending is a reboot decided but waiting for running tasks.
	RebootPending *Reboot `json:"rebootPending,omitempty"`
	// RebootIssued is written just before the reboot command runs; the next
	// start reports it and moves it to LastReboot.
	RebootIssued *Reboot `json:"rebootIssued,omitempty"`
	// LastReboot is the reboot that preceded this boot.
	LastReboot *Reboot `json:"lastReboot,omitempty"`
	// RebootHistory holds when reboots were issued (for the boot-loop guard), oldest first.
	RebootHistory []time.Time `json:"rebootHistory"`
	// LastClaimAt is the last successful claimWork call, empty or not.
	LastClaimAt time.Time `json:"lastClaimAt"`
	// LastTaskClaimedAt is when a task was last claimed.
	LastTaskClaimedAt time.Time `json:"lastTaskClaimedAt"`
	// LeftoversKilled counts processes of earlier tasks the runner killed.
	LeftoversKilled int `json:"leftoversKilled"`
	// WatchdogRestarts counts agent loop restarts by the watchdog.
	WatchdogRestarts int `json:"watchdogRestarts"`
	// Checks are the latest results of every check.
	Checks []CheckStatus `json:"checks"`
	// Canary is a canary the provisioner sent with its quarantine, kept
	// until it has run and been reported (canary.go).
	Canary *KeptCanary `json:"canary,omitempty"`
}

// CurrentTask is a run in progress.
type CurrentTask struct {
	TaskID  string    `json:"taskId"`
	RunID   int       `json:"runId"`
	Started time.Time `json:"started"`
	LogURL  string    `json:"logURL"`
	// Kind is taskcluster or buildbot; Buildbot names the build.
	Kind     string           `json:"kind,omitempty"`
	Buildbot *agent.BuildInfo `json:"buildbot,omitempty"`
}

// TaskRecord is a finished run.
type TaskRecord struct {
	TaskID     string    `json:"taskId"`
	RunID      int       `json:"runId"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended"`
	Resolution string    `json:"resolution"`
	ExitCode   int       `json:"exitCode"`
	// Kind is taskcluster or buildbot; Buildbot names the build.
	Kind     string           `json:"kind,omitempty"`
	Buildbot *agent.BuildInfo `json:"buildbot,omitempty"`
}

// Quarantine is why and until when the machine takes no work.
type Quarantine struct {
	Reason string `json:"reason"`
	// Source is manual, health, failures, boot-loop, check or provisioner.
	Source string    `json:"source"`
	Since  time.Time `json:"since"`
	// Until is when it lifts by itself (nil: when its cause clears or by hand).
	Until *time.Time `json:"until,omitempty"`
	// Queue is the outcome of mirroring it to the queue ("", "mirrored",
	// or the error).
	Queue string `json:"queue,omitempty"`
}

// Reboot is one reboot decision.
type Reboot struct {
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requestedAt"`
	// Manual reboots (CLI, API) bypass the boot-loop guard.
	Manual bool `json:"manual,omitempty"`
	// StopTasksAt is when running tasks are stopped for a plain request.
	StopTasksAt time.Time `json:"stopTasksAt,omitzero"`
	IssuedAt    time.Time `json:"issuedAt,omitzero"`
	// Error is set when the reboot command failed.
	Error string `json:"error,omitempty"`
}

// StateStore reads and writes the state file.
type StateStore struct {
	path string
}

// NewStateStore returns a store for the state file at path.
func NewStateStore(path string) *StateStore { return &StateStore{path: path} }

// Path is the state file's path.
func (s *StateStore) Path() string { return s.path }

// Load reads the state; a missing file is a zero state and no error.
func (s *StateStore) Load() (State, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return State{Version: StateVersion}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state file %s: %w", s.path, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("state file %s is not valid JSON (%v); move it aside to start afresh", s.path, err)
	}
	if st.Version > StateVersion {
		return State{}, fmt.Errorf("state file %s has version %d, newer than this runner's %d; upgrade the runner", s.path, st.Version, StateVersion)
	}
	st.Version = StateVersion
	return st, nil
}

// Save writes the state atomically.
func (s *StateStore) Save(st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, platform.PrivateDirMode); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".runner-state-*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write state file %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync state file %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replace state file %s: %w", s.path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the OS allows syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// clone is a deep copy, for readers outside the runner's lock.
func (st State) clone() State {
	c := st
	c.CurrentTasks = append([]CurrentTask(nil), st.CurrentTasks...)
	c.RecentTasks = append([]TaskRecord(nil), st.RecentTasks...)
	c.RebootHistory = append([]time.Time(nil), st.RebootHistory...)
	c.Checks = append([]CheckStatus(nil), st.Checks...)
	if st.Quarantine != nil {
		q := *st.Quarantine
		if q.Until != nil {
			u := *q.Until
			q.Until = &u
		}
		c.Quarantine = &q
	}
	if st.Canary != nil {
		k := *st.Canary
		c.Canary = &k
	}
	for _, p := range []**Reboot{&c.RebootPending, &c.RebootIssued, &c.LastReboot} {
		if *p != nil {
			r := **p
			*p = &r
		}
	}
	return c
}
