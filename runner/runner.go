package runner

// The runner's life:
//
//	start ──state file: report the reboot that preceded this boot──▶ booting
//	booting ──checks directory + built-in checks, until every check has
//	       passed once since this start (firstpass.go)──▶ idle ⇄ running
//	idle ──claim gate: checks before every claim; closed while draining,
//	       quarantined or a reboot is pending──▶ claimWork
//	task ends ──counters, infrastructure failures, reboot policy──▶ idle
//	reboot pending ──no task running (or grace over)──▶ boot-loop guard
//	       ──▶ rebooting (reason written first)  or  quarantined (boot loop)
//	ctx done (service stop) ──▶ draining ──tasks end or drainGrace──▶
//	       remaining tasks resolved worker-shutdown ──▶ stopped

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
)

// Options are what New needs besides the configuration.
type Options struct {
	// Version is reported by status.
	Version string
	// Logger receives the runner's logs (default slog.Default()).
	Logger *slog.Logger
	// Probes replace the machine measurements (tests).
	Probes Probes
	// Now replaces the clock (tests).
	Now func() time.Time
	// Facts, when set, are what the machine registers with instead of the
	// facts collected from the computer (and no EC2 identity is sought):
	// the demo runs several runners on one computer, which would
	// otherwise register as one machine under one hostname and serial.
	Facts *client.Facts
}

// Runner runs the agent for the machine's life as a service.
type Runner struct {
	// agentCfg is the agent's configuration in effect: the file's, with a
	// provisioner's assignment applied (baseCfg is the file's alone).
	agentCfg atomic.Pointer[agent.FileConfig]
	// assignedSource and assignedBuilders are the provisioner
	// assignment's kind of work, when it names one (guarded by mu).
	assignedSource   string
	assignedBuilders []string
	baseCfg          *agent.FileConfig
	cfg              *Config
	version          string
	log              *slog.Logger
	probes           Probes
	now              func() time.Time
	facts            *client.Facts
	store            *StateStore
	metrics          *metrics

	checkMu  sync.Mutex // one round of checks at a time
	mirrorMu sync.Mutex // one quarantineWorker call at a time

	mu      sync.Mutex
	st      State
	changed chan struct{} // closed and replaced on every change
	booting bool
	// startedAt is when this process booted (boot()); zero while it still
	// waits for the provisioner's first answer (state starting).
	startedAt time.Time
	// claimFailure is set while claims fail (queue or bridge unreachable,
	// credentials refused), for status.
	claimFailure  *ClaimFailure
	stopping      bool
	checksDue     bool      // run the checks directory before the next claim
	lastBuiltin   time.Time // last round of built-in checks
	lastClock     time.Time // last clock check
	lastDirChecks time.Time
	agentStarted  time.Time
	stopAgent     context.CancelCauseFunc
	agentHalted   bool // the stop is final: no new agent loop
	polling       int  // claimWork calls in flight
	// mem is the collector's settings by idleness (memory.go).
	mem memoryTuning

	// The first pass since this start (firstpass.go): every check passed
	// once; the checks directory gave OK once, or the check it failed on
	// last and that check's output.
	firstPassDone bool
	dirPassed     bool
	dirFailed     string
	dirOutput     string
	loggedPending string

	// With a provisioner: the link, the push channel of cancellations, the
	// configuration the agent loop runs with and whether it must restart
	// with a new assignment once idle.
	link           *ProvisionerLink
	pushCancel     *pushCancelWatcher
	loopCfg        *agent.FileConfig
	restartPending bool
	restartIssued  bool
	lastHBState    string
	linkErr        error // the provisioner's refusal that stopped the runner
}

// errWatchdog and errInterrupt are why the agent loop was stopped.
var (
	errWatchdog  = errors.New("watchdog: no successful claim while idle and healthy")
	errInterrupt = errors.New("drain grace over: running tasks stopped")
	errReassign  = errors.New("new assignment from the provisioner")
)

// New checks the configuration and loads the state file.
func New(ac *agent.FileConfig, rc *Config, opts Options) (*Runner, error) {
	if ac == nil || rc == nil {
		return nil, errors.New("runner.New: agent and runner configuration are required; load them with runner.Load")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	r := &Runner{
		baseCfg: ac, cfg: rc, version: opts.Version, log: opts.Logger, probes: opts.Probes, now: opts.Now, facts: opts.Facts,
		store: NewStateStore(rc.StateFile), changed: make(chan struct{}), booting: true,
		pushCancel: newPushCancelWatcher(),
	}
	r.agentCfg.Store(ac)
	r.probes.fill(func() string { return r.agentCfg.Load().RootURL })
	st, err := r.store.Load()
	if err != nil {
		return nil, err
	}
	r.st = st
	r.metrics = newMetrics(r)
	return r, nil
}

// Run runs the machine's life until ctx is done, then drains: running tasks
// get drainGrace to finish before they are resolved worker-shutdown. With a
// provisioner, the machine registers first; a refused registration stops
// the runner with that error.
func (r *Runner) Run(ctx context.Context) error {
	r.tuneMemory()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	err := r.run(ctx, stop)
	if lerr := r.linkFailure(); lerr != nil {
		return lerr
	}
	return err
}

func (r *Runner) run(ctx context.Context, stopRun func()) error {
	if err := r.securePrivateFiles(); err != nil {
		r.finish()
		return err
	}
	ln, err := platform.ListenControl(r.cfg.ControlSocket)
	if err != nil {
		return fmt.Errorf("control socket: %w (runner.controlSocket)", err)
	}
	srv := &http.Server{Handler: r.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("control API", "error", err)
		}
	})
	defer bg.Wait()
	defer srv.Close()
	if r.cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", r.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listen on %s (runner.metricsListen): %w", r.cfg.MetricsListen, err)
		}
		msrv := &http.Server{Handler: r.metricsOnlyHandler(), ReadHeaderTimeout: 10 * time.Second}
		bg.Go(func() { _ = msrv.Serve(mln) })
		defer msrv.Close()
	}

	if r.cfg.Provisioner.Enabled() {
		link, stopLink, err := r.startLink(ctx, &bg, stopRun)
		if err != nil {
			r.finish()
			return err
		}
		defer stopLink()
		r.log.Info("waiting for the provisioner's assignment", "url", r.cfg.Provisioner.URL)
		select {
		case <-link.Ready():
		case <-ctx.Done():
			r.finish()
			return nil
		}
		if as, ok := link.Assignment(); ok {
			r.onAssignment(as)
		}
	}

	r.boot()
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	bg.Go(func() { r.ticker(bgCtx) })
	defer stopBg()

	// Boot checks run while nothing can be claimed.
	r.runCheckDir(bgCtx)
	r.runBuiltins(bgCtx, true, false)
	r.mu.Lock()
	r.booting = false
	r.commit()
	r.mu.Unlock()
	r.maybeReboot()
	releaseMemory()

	// The agent outlives ctx: a stop drains first.
	agentDone := make(chan error, 1)
	go func() { agentDone <- r.agentLoop() }()
	select {
	case err := <-agentDone:
		r.finish()
		return err
	case <-ctx.Done():
	}
	r.log.Info("stopping: draining", "grace", r.cfg.DrainGrace.Duration)
	r.mu.Lock()
	r.stopping = true
	r.commit()
	r.mu.Unlock()
	grace := time.NewTimer(r.cfg.DrainGrace.Duration)
	defer grace.Stop()
	for {
		r.mu.Lock()
		n, ch := len(r.st.CurrentTasks), r.changed
		r.mu.Unlock()
		if n == 0 {
			r.haltAgent(context.Canceled)
			break
		}
		select {
		case <-ch:
			continue
		case <-grace.C:
			r.log.Warn("drain grace over; stopping running tasks (worker-shutdown)", "tasks", n)
			r.haltAgent(errInterrupt)
		}
		break
	}
	err = <-agentDone
	r.finish()
	return err
}

// haltAgent stops the agent loop for good.
func (r *Runner) haltAgent(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.agentHalted = true
	if r.stopAgent != nil {
		r.stopAgent(cause)
	}
}

// finish records the stop.
func (r *Runner) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Phase = PhaseStopped
	r.st.UpdatedAt = r.now()
	if err := r.store.Save(r.st); err != nil {
		r.log.Error("save state", "error", err)
	}
}

// boot reports the reboot that preceded this start and resets what does
// not survive a restart.
func (r *Runner) boot() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.st.Version = StateVersion
	ac := r.agentCfg.Load()
	r.st.WorkerGroup, r.st.WorkerID, r.st.TaskQueueID = ac.WorkerGroup, ac.WorkerID, ac.TaskQueueID
	r.st.TaskUser, r.st.TaskUserKill = ac.TaskUser, taskUserKill(ac.TaskUser)
	r.st.RunnerStarted = now
	r.startedAt = now
	if ri := r.st.RebootIssued; ri != nil {
		r.log.Info("started after a reboot", "reason", ri.Reason, "issuedAt", ri.IssuedAt)
		r.st.LastReboot = ri
		r.st.RebootIssued = nil
	}
	// Runs in the state file were cut short by a crash; the agent's journal
	// resolves them with the queue, and a canary runs again (canary.go).
	for _, ct := range r.st.CurrentTasks {
		rec := TaskRecord{TaskID: ct.TaskID, RunID: ct.RunID, Started: ct.Started, Ended: now, Resolution: "interrupted (runner restarted)", ExitCode: -1,
			Kind: ct.Kind, Buildbot: ct.Buildbot}
		if rep := r.canaryCutShort(ct, &rec, now); rep != nil && r.link != nil {
			go r.link.ReportRun(*rep)
		}
		r.addRecord(rec)
	}
	r.st.CurrentTasks = nil
	if q := r.st.Quarantine; q != nil && q.Source == SourceHealth {
		// Health is measured afresh.
		r.st.Quarantine = nil
		go r.syncQueueQuarantine()
	} else if q != nil {
		// The queue may have missed the last change before a crash.
		go r.syncQueueQuarantine()
	}
	r.resetFirstPass()
	r.checksDue = false
	r.commit()
}

// agentLoop runs the agent, again after each watchdog restart.
func (r *Runner) agentLoop() error {
	for {
		ctx, stop := context.WithCancelCause(context.Background())
		r.mu.Lock()
		if r.agentHalted {
			r.mu.Unlock()
			stop(nil)
			return nil
		}
		r.stopAgent = stop
		r.agentStarted = r.now()
		ac := r.agentCfg.Load()
		reassigned := r.restartPending
		r.loopCfg, r.restartPending, r.restartIssued = ac, false, false
		if reassigned {
			// The claim gate opens again.
			r.commit()
		}
		r.mu.Unlock()
		err := agent.RunStandaloneWith(ctx, ac, r.version, r.log, r.adjustAgent)
		cause := context.Cause(ctx)
		stop(nil)
		switch {
		case errors.Is(cause, errWatchdog):
			r.log.Warn("agent loop restarted by the watchdog", "agentError", err)
			continue
		case errors.Is(cause, errReassign):
			r.log.Info("agent loop restarted with the provisioner's new assignment", "agentError", err)
			continue
		case errors.Is(cause, errInterrupt) && !r.isStopping():
			// Tasks were stopped for a reboot; the runner lives on.
			continue
		case err != nil:
			return fmt.Errorf("agent: %w", err)
		case ctx.Err() == nil:
			return errors.New("the agent stopped by itself")
		}
		return nil
	}
}

func (r *Runner) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// adjustAgent puts the runner between the agent and its source.
func (r *Runner) adjustAgent(c *agent.Config) {
	if r.cfg.Provisioner.Enabled() {
		// Claims use the link's current credentials, rotated or not.
		ac := r.agentCfg.Load()
		c.Source = agent.NewTCSource(agent.TCSourceConfig{
			RootURL: ac.RootURL, CredentialsFunc: r.claimCredentials,
			TaskQueueID: ac.TaskQueueID, WorkerGroup: ac.WorkerGroup, WorkerID: ac.WorkerID, Logger: r.log,
		})
	}
	if src, err := r.poolSource(c, c.Source); err != nil {
		// Checked at load; an assignment naming a source the file cannot
		// serve keeps the Taskcluster source and says why.
		r.log.Error("the pool's Buildbot source cannot be used; claiming from Taskcluster only", "error", err)
	} else {
		c.Source = src
	}
	if r.cfg.Provisioner.Enabled() {
		// Purge requests are asked for with the link's current credentials.
		ac := r.agentCfg.Load()
		c.PurgeCache = agent.NewPurgeCache(ac.RootURL, ac.TaskQueueID, r.claimCredentials)
	}
	// Downloads and caches give way before the disk check would trip.
	c.DiskFreeMin = uint64(r.cfg.Checks.DiskFreeMinMB) * mb
	c.Source = &gate{r: r, inner: c.Source}
	c.Cancel = r.pushCancel.with(c.Cancel)
	c.RunDone = r.runDone
	c.Preflight = r.preflight
	r.describeInstance(&c.ChainOfTrustEnvironment)
}

// describeInstance adds what the machine's registration knows of its cloud
// instance (EC2: instance id, type, region) to the chain-of-trust
// environment, as generic-worker takes them from its provider's metadata.
func (r *Runner) describeInstance(env *cot.Environment) {
	r.mu.Lock()
	link := r.link
	r.mu.Unlock()
	if link == nil {
		return
	}
	f := link.cfg.Facts
	env.InstanceID, env.InstanceType, env.Region = f.InstanceID, f.InstanceType, f.Region
}

// commit derives the phase, saves the state and wakes waiters. Caller
// holds r.mu.
func (r *Runner) commit() {
	r.st.Phase = r.phase()
	r.st.UpdatedAt = r.now()
	if err := r.store.Save(r.st); err != nil {
		r.log.Error("save state", "error", err)
	}
	r.metrics.update(&r.st)
	r.followProvisioner()
	close(r.changed)
	r.changed = make(chan struct{})
}

// phase is the state shown by status. Caller holds r.mu.
func (r *Runner) phase() string {
	busy := len(r.st.CurrentTasks) > 0
	switch {
	case r.st.RebootIssued != nil:
		return PhaseRebooting
	case r.booting:
		return PhaseBooting
	case busy && (r.st.Draining || r.stopping || r.st.RebootPending != nil):
		return PhaseDraining
	case busy:
		return PhaseRunning
	case r.stopping:
		return PhaseDraining
	case r.st.Quarantine != nil:
		return PhaseQuarantined
	case r.st.Draining && r.polling == 0:
		// Nothing runs and nothing can be claimed any more: what the
		// provisioner calls drained.
		return PhaseDrained
	case r.st.Draining:
		return PhaseDraining
	case r.st.RebootPending != nil:
		return PhaseRebooting
	case !r.firstPassDone:
		return PhaseBooting
	}
	return PhaseIdle
}

// rebootFunc reboots with the configured command or the OS.
func (r *Runner) rebootFunc(reason string) error {
	if cmd := r.cfg.Reboot.Command; len(cmd) > 0 {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Env = append(os.Environ(), "LABRUNNER_REBOOT_REASON="+reason)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("reboot command %v: %w (%s)", cmd, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return platform.Reboot(reason)
}
