package devstack

// The demo is `make demo`: the whole system in one process on embedded
// defaults. It starts the devstack (dev queue, provisioner, one bridge),
// three real runners enrolled with an enrollment token, applies a native
// Taskcluster pool and a Buildbot pool, then plays a scenario
// (demo_scenario.go) and checks that every outcome is the expected one:
//
//	start ──▶ pools ──▶ enroll lab-1, lab-2, lab-3 ──▶ mixed graph and a cancel
//	   ──▶ a failing check quarantines a machine, the repair releases it
//	   ──▶ lab-1 reboots after 2 tasks and comes back ──▶ demand moves lab-1
//	   ──▶ summary table, one machine's `runner status`, total time
//	   ──▶ stop everything, or (Keep) leave it running for the dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// The demo's native pool's task queue: `devstack task submit` sends tasks
// there by default, where the demo's test machines claim them.
const (
	ProvisionerID = "labrunner-dev"
	WorkerType    = "tests"
	TaskQueueID   = ProvisionerID + "/" + WorkerType
)

// The demo's pools and builder.
const (
	BuildsPool  = "demo-builds"
	TestsPool   = "demo-tests"
	demoBuilder = "demo-compile"
	// bridgeQueue is the task queue the devstack's bridge serves.
	bridgeQueue = "buildbot-bridge/buildbot-bridge"
)

// DemoOptions configures a demo run.
type DemoOptions struct {
	// System configures the devstack; BuildersFile, AssignInterval and
	// MoveInterval are the demo's unless set.
	System Options
	// WorkDir holds the machines' directories and the demo's log (default:
	// a new temporary directory, removed when the demo stops, unless it
	// failed).
	WorkDir string
	// Short plays the smaller graph (one test task per build instead of
	// two), for `go test -short`.
	Short bool
	// Keep leaves the stack and the machines running after the scenario:
	// RunDemo returns a Demo whose Close stops them. The dashboard's
	// browser tests use it to get a populated system.
	Keep bool
}

// Demo is a demo's system and what became of its scenario. With
// DemoOptions.Keep everything still runs until Close.
type Demo struct {
	// System is the devstack: RootURL, root Credentials, Provisioner,
	// Bridge, AdminToken.
	System *System
	// DashboardURL is the provisioner's dashboard; sign in with
	// AdminToken or ReadOnlyToken (or send either as the password of HTTP
	// Basic auth, any user name).
	DashboardURL string
	// AdminToken and ReadOnlyToken are provisioner tokens.
	AdminToken, ReadOnlyToken string
	// Machines are the three lab machines (lab-1 builds, lab-2 and lab-3
	// test); their runners run while the demo is kept.
	Machines []*DemoMachine
	// MachineIDs maps a machine's name to its provisioner machine id.
	MachineIDs map[string]string
	// Tasks are the scenario's tasks, in the order they were submitted.
	Tasks []DemoTask
	// Outcomes are the scenario's expectations and what happened.
	Outcomes []DemoOutcome
	// Elapsed is the scenario's time, from start to the summary.
	Elapsed time.Duration
	// WorkDir holds the machines and demo.log.
	WorkDir string

	removeDir string
	logFile   *os.File
	closed    bool
}

// ErrUnexpectedOutcome is returned (wrapped) when an outcome of the
// scenario was not the expected one.
var ErrUnexpectedOutcome = errors.New("the demo did not go as expected")

// RunDemo starts everything, plays the scenario and writes what happens
// to out. It returns an error wrapping ErrUnexpectedOutcome if any outcome
// was not the expected one. Unless opts.Keep, everything is stopped
// before it returns; with Keep (and no error) the caller owns the Demo
// and must Close it.
func RunDemo(ctx context.Context, out io.Writer, opts DemoOptions) (*Demo, error) {
	d := &Demo{WorkDir: opts.WorkDir}
	if d.WorkDir == "" {
		dir, err := os.MkdirTemp("", "labrunner-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo work directory: %w", err)
		}
		d.WorkDir, d.removeDir = dir, dir
	} else if err := os.MkdirAll(d.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo work directory: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = d.Close()
		}
	}()
	logFile, logger, err := demoLogger(d.WorkDir, opts.System.Stack.Logger)
	if err != nil {
		return nil, err
	}
	// The services log to it until Close (a kept demo goes on running).
	d.logFile = logFile
	opts.System.Stack.Logger = logger
	if opts.System.BuildersFile == "" {
		path := filepath.Join(d.WorkDir, "builders.yaml")
		if err := writeBuilders(path); err != nil {
			return nil, fmt.Errorf("demo builders.yaml: %w", err)
		}
		opts.System.BuildersFile = path
	}
	if opts.System.AssignInterval == 0 {
		opts.System.AssignInterval = 200 * time.Millisecond
	}
	if opts.System.MoveInterval == 0 {
		opts.System.MoveInterval = time.Second
	}

	rep := newReporter(out)
	rep.step("starting the devstack (dev queue, provisioner, bridge)")
	s, err := Start(ctx, opts.System)
	if err != nil {
		return nil, err
	}
	d.System, d.AdminToken = s, s.AdminToken
	d.DashboardURL = s.RootURL + "/dashboard"
	rep.println("devstack at %s (logs: %s)", s.RootURL, filepath.Join(d.WorkDir, "demo.log"))

	sc := &scenario{d: d, rep: rep, short: opts.Short, log: logger}
	runErr := sc.run(ctx)
	rep.endProgress()
	d.Elapsed = time.Since(rep.start)
	d.Outcomes = rep.outcomes
	d.Tasks = sc.summary(ctx)
	fmt.Fprintln(out)
	printTasks(out, d.Tasks)
	for _, t := range d.Tasks {
		if t.Result != t.Expected {
			rep.expect(false, "task "+t.Name+" ends "+t.Expected, "it ended "+t.Result)
			d.Outcomes = rep.outcomes
		}
	}
	if len(d.Machines) > 0 {
		m := d.Machines[0]
		fmt.Fprintf(out, "\n$ runner status --config %s\n", m.ConfigFile)
		if st, err := m.Status(ctx); err != nil {
			rep.expect(false, "runner status answers", err.Error())
			d.Outcomes = rep.outcomes
		} else {
			_ = runner.FormatStatus(out, st)
		}
	}
	failed := rep.failed()
	fmt.Fprintf(out, "\n%d outcomes checked, %d unexpected; total %.1f s\n", len(d.Outcomes), failed, d.Elapsed.Seconds())
	switch {
	case runErr != nil:
		d.keepWorkDir(out)
		return d, fmt.Errorf("%w: %v", ErrUnexpectedOutcome, runErr)
	case failed > 0:
		d.keepWorkDir(out)
		return d, fmt.Errorf("%w: %d of %d outcomes", ErrUnexpectedOutcome, failed, len(d.Outcomes))
	}
	if opts.Keep {
		keep = true
		d.printLogin(out)
	}
	return d, nil
}

// demoLogger is the logger the services and runners use: the caller's, or
// demo.log in the work directory (the demo's own output stays readable).
func demoLogger(workDir string, given *slog.Logger) (*os.File, *slog.Logger, error) {
	if given != nil {
		return nil, given, nil
	}
	f, err := os.OpenFile(filepath.Join(workDir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("demo log: %w", err)
	}
	return f, slog.New(slog.NewTextHandler(f, nil)), nil
}

// keepWorkDir keeps a failed demo's directory (and its log) for a look.
func (d *Demo) keepWorkDir(out io.Writer) {
	if d.removeDir != "" {
		d.removeDir = ""
		fmt.Fprintf(out, "kept %s (demo.log, the machines' state) to see what went wrong\n", d.WorkDir)
	}
}

// printLogin tells a person where to look while the demo is kept.
func (d *Demo) printLogin(out io.Writer) {
	fmt.Fprintf(out, `
Everything keeps running; Ctrl-C stops it.
  dashboard   %s
              sign in with the admin token   %s
                        or the read-only token %s
  environment (for the provisioner CLI, devstack task submit, taskcluster):
`, d.DashboardURL, d.AdminToken, d.ReadOnlyToken)
	var env bytes.Buffer
	PrintEnv(&env, d.System)
	fmt.Fprint(out, indent(env.String(), "    "))
	fmt.Fprintf(out, "  a machine   runner status --config %s\n", d.Machines[0].ConfigFile)
}

// Close stops the machines (each drains) and the devstack, and removes a
// temporary work directory.
func (d *Demo) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, m := range d.Machines {
		m.halt()
	}
	var err error
	if d.System != nil {
		err = d.System.Close()
	}
	if d.logFile != nil {
		err = errors.Join(err, d.logFile.Close())
	}
	if d.removeDir != "" {
		err = errors.Join(err, os.RemoveAll(d.removeDir))
	}
	return err
}

// baseFacts are this computer's facts, which the demo machines share but
// for their hostnames (and serial, which would make them one machine).
func baseFacts(ctx context.Context) (client.Facts, error) {
	mf, err := platform.CollectMachineFacts(ctx)
	if err != nil {
		return client.Facts{}, fmt.Errorf("machine facts: %w", err)
	}
	return client.Facts{OS: mf.OS, OSVersion: mf.OSVersion, Arch: mf.Arch, Model: mf.Model, CPUs: mf.CPUs, MemoryMB: mf.MemoryMB, DiskGB: mf.DiskGB}, nil
}
