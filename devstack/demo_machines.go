package devstack

// The demo's lab machines: three real runners (package runner, built from
// a configuration file exactly as `runner run` builds one) in this
// process, each with its own state, tasks and checks directories. A
// machine's "power" is a supervisor goroutine:
//
//	write runner.yml ──▶ boot: runner.Load + runner.New + Run
//	   ──▶ the runner's reboot command has run (status: reboot issued)
//	   ──▶ stop the runner (it drains; nothing runs) ──▶ boot again
//	stop() ──▶ the runner drains and stops for good

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// DemoMachine is one of the demo's lab machines.
type DemoMachine struct {
	// Name is the machine's hostname, which the provisioner derives its
	// machine id (and the worker id) from.
	Name string
	// Dir holds its configuration, state, tasks and checks.
	Dir string
	// ConfigFile is its runner.yml: `runner status --config ConfigFile`
	// shows it while it runs.
	ConfigFile string
	// ControlSocket is its control channel (`runner status` talks to it).
	ControlSocket string

	facts   client.Facts
	log     *slog.Logger
	version string

	mu       sync.Mutex
	current  *runner.Runner
	reboots  int
	bootedAt time.Time
	runErr   error
	stop     context.CancelFunc
	done     chan struct{}
}

// machineSettings are what differ between the demo's machines.
type machineSettings struct {
	name string
	// rebootAfterTasks is the reboot policy's afterTasks (0: none).
	rebootAfterTasks int
}

// newDemoMachine writes the machine's configuration and checks directory.
func newDemoMachine(workDir string, m machineSettings, provURL, enrollToken string, base client.Facts, log *slog.Logger) (*DemoMachine, error) {
	dir := filepath.Join(workDir, m.name)
	checks := filepath.Join(dir, "checks")
	if err := os.MkdirAll(checks, 0o700); err != nil {
		return nil, fmt.Errorf("demo machine %s: %w", m.name, err)
	}
	if err := writeStaleLockCheck(checks, staleLockPath(dir)); err != nil {
		return nil, fmt.Errorf("demo machine %s: checks directory: %w", m.name, err)
	}
	stateDir := filepath.Join(dir, "state")
	socket := platform.DefaultControlPath(stateDir)
	switch {
	case socket == platform.DefaultControlPath(filepath.Join(dir, "other")):
		// One fixed control channel per computer (a named pipe on
		// Windows): each demo machine needs its own.
		socket = fmt.Sprintf("%s-demo-%d-%s", socket, os.Getpid(), m.name)
	case len(socket) > maxSocketPath:
		// A Unix socket's path has at most 104 bytes on macOS (108 on
		// Linux), which a deep temporary directory can pass.
		socket = filepath.Join(os.TempDir(), fmt.Sprintf("labrunner-demo-%d-%s.sock", os.Getpid(), m.name))
	}
	rebootCmd, err := rebootCommand(dir)
	if err != nil {
		return nil, fmt.Errorf("demo machine %s: reboot command: %w", m.name, err)
	}
	reboot := map[string]any{"command": rebootCmd}
	if m.rebootAfterTasks > 0 {
		reboot["afterTasks"] = m.rebootAfterTasks
	}
	cfg := map[string]any{
		"stateDir": stateDir,
		"tasksDir": filepath.Join(dir, "tasks"),
		// Tasks run as the runner's own account: the demo runs on a
		// developer's computer without root or administrator rights, and
		// must not create accounts there (per-task users need both).
		"taskUser":     "service",
		"idlePollWait": "100ms",
		"runner": map[string]any{
			"controlSocket": socket,
			"drainGrace":    "5s",
			// A laptop's free disk and memory are not the demo's business;
			// the checks directory is.
			"checks":   map[string]any{"dir": checks, "diskFreeMinMB": 1, "memFreeMinMB": 1, "interval": "1s", "timeout": "30s"},
			"reboot":   reboot,
			"watchdog": map[string]any{"timeout": "0s"},
			"buildbot": map[string]any{"bridgeURL": provURL},
			"provisioner": map[string]any{
				"url": provURL, "enrollmentToken": enrollToken,
				"heartbeatInterval": "250ms", "pollWait": "5s",
			},
		},
	}
	// JSON is YAML: the file reads as any runner.yml does.
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("demo machine %s: encode runner.yml: %w", m.name, err)
	}
	path := filepath.Join(dir, "runner.yml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, fmt.Errorf("demo machine %s: write runner.yml: %w", m.name, err)
	}
	facts := base
	facts.Hostname, facts.Serial = m.name, ""
	return &DemoMachine{Name: m.name, Dir: dir, ConfigFile: path, ControlSocket: socket, facts: facts,
		log: log.With("machine", m.name), version: "demo"}, nil
}

// maxSocketPath is the longest control socket path the demo uses as it
// is: macOS allows 104 bytes, with the terminating zero.
const maxSocketPath = 100

// staleLockPath is the file the demo's "breaking" task leaves behind on
// the machine and the checks directory looks for.
func staleLockPath(machineDir string) string { return filepath.Join(machineDir, "stale.lock") }

// start powers the machine on: its supervisor boots the runner, and boots
// it again after each reboot, until stop.
func (m *DemoMachine) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			err := m.boot(ctx)
			m.mu.Lock()
			m.current = nil
			if err != nil {
				m.runErr = err
				m.mu.Unlock()
				m.log.Error("the runner stopped", "error", err)
				return
			}
			if ctx.Err() == nil {
				m.reboots++
			}
			m.mu.Unlock()
		}
	}()
}

// boot runs the runner once: until it has run its reboot command (nil),
// until ctx is done (nil) or until it fails.
func (m *DemoMachine) boot(ctx context.Context) error {
	ac, rc, err := runner.Load(m.ConfigFile)
	if err != nil {
		return fmt.Errorf("%s: %w", m.ConfigFile, err)
	}
	facts := m.facts
	r, err := runner.New(ac, rc, runner.Options{Version: m.version, Logger: m.log, Facts: &facts})
	if err != nil {
		return err
	}
	booted := time.Now()
	m.mu.Lock()
	m.current, m.bootedAt = r, booted
	m.mu.Unlock()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("the runner stopped by itself")
			}
			return err
		case <-tick.C:
		}
		// A reboot issued before this boot is the one the state file
		// still holds until the runner reports it.
		if st := r.Status(); st.Reboot.Issued != nil && st.Reboot.Issued.IssuedAt.After(booted) {
			// The reboot command has run: a real machine would go down
			// now. This one stops its runner and boots it again.
			m.log.Info("rebooting the demo machine", "reason", st.Reboot.Issued.Reason)
			stopRun()
			if err := <-done; err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		}
	}
}

// halt stops the machine for good and waits for its runner to drain.
func (m *DemoMachine) halt() {
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.done
}

// Status is the machine's runner status, as `runner status` shows it: read
// over the control channel.
func (m *DemoMachine) Status(ctx context.Context) (*runner.Status, error) {
	return runner.NewClient(m.ControlSocket).Status(ctx)
}

// liveStatus is the running runner's status without the control channel;
// ok is false while the machine is between two boots.
func (m *DemoMachine) liveStatus() (runner.Status, bool) {
	m.mu.Lock()
	r := m.current
	m.mu.Unlock()
	if r == nil {
		return runner.Status{}, false
	}
	return r.Status(), true
}

// Reboots counts the reboots the machine went through.
func (m *DemoMachine) Reboots() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reboots
}

// failure is why the machine's runner stopped by itself, or nil.
func (m *DemoMachine) failure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runErr
}

// bootTime is when the runner last booted.
func (m *DemoMachine) bootTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bootedAt
}
