package runner

// A black hole's canary: the provisioner's quarantine directive may carry
// a task to run while the machine stays quarantined (docs/provisioner.md,
// "Black holes"). The runner keeps it in the state file and hands it to
// the agent through the claim gate, as if claimed, once nothing else runs;
// the agent runs it with the pool's usual settings but no queue (and no
// journal: the runner's state file is the canary's record). Its result is
// reported as a run of kind canary, with the tail of its log
// (canarylog.go), and the provisioner lifts the quarantine or renews it.
//
//	quarantine directive with a canary ──▶ state.canary (kept across restarts)
//	gate: canary kept, provisioner quarantine, checks passed, nothing running ──▶ agent runs it
//	   (the agent names its log file ──▶ state.canary.logFile)
//	run ends ──▶ reported (kind canary, log tail); state.canary cleared
//	run interrupted, the first time ──▶ not reported; state.canary.interrupted set; it runs again
//	run interrupted again ──▶ reported exception/worker-shutdown, with the log up to the interruption; cleared
//	unquarantine, or a quarantine directive without one ──▶ state.canary cleared (not run)
//
// Interrupted means the runner cut the run short, as it does a queue
// task's: a stop or a reboot past its grace (the agent resolves the run
// exception/worker-shutdown), or a crash, a kill or a power loss (the next
// start finds the canary still current in the state file and reads its
// log file, which the agent left behind). A queue task so interrupted is
// resolved exception/worker-shutdown and the queue runs it again; the
// canary runs again too, once, so that restarting a runner (an upgrade, a
// reboot) does not cost the machine a renewed quarantine. A canary that
// is interrupted twice (one that crashes the machine, say) is reported,
// so the provisioner renews the quarantine and an operator can read the
// log. A run again that ends after the canary's deadline is not judged:
// the provisioner has renewed the quarantine by then ("no report"), and
// that renewal drops the canary here.

import (
	"context"
	"sync"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

// SourceCanary is the kind of a canary's run in status and state.
const SourceCanary = "canary"

// KeptCanary is the provisioner's canary as the state file keeps it until
// it is reported.
type KeptCanary struct {
	client.Canary
	// LogFile is where the agent writes the log of the run in progress:
	// after a crash, the next start reads it from there.
	LogFile string `json:"logFile,omitempty"`
	// Interrupted is when a run of it was cut short; it runs once more.
	Interrupted *time.Time `json:"interrupted,omitempty"`
}

// canaryRun is the canary as the agent runs it: a local run under the
// provisioner's task id, whose log the runner keeps.
type canaryRun struct {
	*agent.LocalRun
	r *Runner

	mu  sync.Mutex
	log string
}

// LogOpened records the log file in the state, before the canary's first
// line, so that a crash does not lose it.
func (c *canaryRun) LogOpened(path string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if k := c.r.st.Canary; k != nil && k.TaskID == c.TaskID() {
		k.LogFile = path
		c.r.commit()
	}
}

// Publish keeps the tail of the finished log, which the agent publishes
// as the run's backing log; other artifacts are a local run's (dropped:
// a canary has no artifacts directory).
func (c *canaryRun) Publish(ctx context.Context, a agent.RunArtifact) error {
	if a.Kind != agent.KindFile || a.Name != agent.BackingLogName {
		return c.LocalRun.Publish(ctx, a)
	}
	tail, err := readLogTail(a.Path)
	if err != nil {
		c.r.log.Warn("the canary's log cannot be read; it is reported without", "taskId", c.TaskID(), "error", err)
	}
	c.mu.Lock()
	c.log = tail
	c.mu.Unlock()
	return nil
}

func (c *canaryRun) logTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log
}

// keepCanary records the canary of a quarantine directive, unless it is
// the one already kept or already run; a quarantine without one drops a
// canary not yet run (the provisioner no longer awaits it). Caller holds
// r.mu and commits.
func (r *Runner) keepCanary(c *client.Canary) {
	if c == nil || c.TaskID == "" {
		r.st.Canary = nil
		return
	}
	if r.st.Canary != nil && r.st.Canary.TaskID == c.TaskID {
		return
	}
	for _, t := range r.st.RecentTasks {
		if t.Kind == SourceCanary && t.TaskID == c.TaskID {
			return
		}
	}
	r.st.Canary = &KeptCanary{Canary: *c}
	r.log.Info("canary received: it runs while the machine stays quarantined", "taskId", c.TaskID)
}

// canaryDue returns the kept canary as a run when the machine may run it:
// quarantined by the provisioner (which sent it), checks passed, nothing
// running, no drain, stop, reboot or new assignment pending. A canary the
// agent cannot read is reported failed at once. Caller holds r.mu and
// commits when a run is returned.
func (r *Runner) canaryDue() agent.Run {
	c := r.st.Canary
	if c == nil || r.st.Quarantine == nil || r.st.Quarantine.Source != SourceProvisioner {
		return nil
	}
	if r.booting || !r.firstPassDone || r.stopping || r.st.Draining || r.st.RebootPending != nil || r.st.RebootIssued != nil ||
		r.restartPending || !r.assigned() || len(r.st.CurrentTasks) > 0 {
		return nil
	}
	now := r.now()
	run, err := agent.NewLocalRunAs(c.TaskID, c.Payload, "")
	if err != nil {
		r.log.Warn("the canary cannot be read; reported as failed", "taskId", c.TaskID, "error", err)
		r.st.Canary = nil
		r.addRecord(TaskRecord{TaskID: c.TaskID, Kind: SourceCanary, Started: now, Ended: now, ExitCode: -1,
			Resolution: agent.StateException + "/" + agent.ReasonMalformedPayload})
		if r.link != nil {
			go r.link.ReportRun(client.RunReport{TaskID: c.TaskID, Kind: client.KindCanary, Result: client.ResultException,
				Reason: agent.ReasonMalformedPayload, Started: now, Finished: now,
				Log: logNote(now, "The canary cannot be run: %v", err)})
		}
		r.commit()
		return nil
	}
	if c.Interrupted != nil {
		r.log.Info("running the canary again: its run was interrupted", "taskId", c.TaskID, "interrupted", *c.Interrupted)
	} else {
		r.log.Info("running the canary", "taskId", c.TaskID)
	}
	r.st.CurrentTasks = append(r.st.CurrentTasks, CurrentTask{TaskID: c.TaskID, Started: now, Kind: SourceCanary})
	return &canaryRun{LocalRun: run, r: r}
}

// canaryEnded settles the kept canary whose run ended with res: the first
// interruption keeps it to run again (again is true: nothing is
// reported), any other end clears it. Caller holds r.mu.
func (r *Runner) canaryEnded(c *canaryRun, res agent.RunResult, rec *TaskRecord) (again bool) {
	k := r.st.Canary
	if k == nil || k.TaskID != c.TaskID() {
		// Dropped meanwhile: its report is harmless, the provisioner
		// ignores a canary it no longer awaits.
		return false
	}
	k.LogFile = ""
	interrupted := res.Resolution.State == agent.StateException && res.Resolution.Reason == agent.ReasonWorkerShutdown
	now := r.now()
	if interrupted && k.Interrupted == nil {
		k.Interrupted = &now
		rec.Resolution = "interrupted (" + res.Resolution.String() + "): the canary runs once more"
		r.log.Info("the canary was interrupted; it runs once more", "taskId", k.TaskID)
		return true
	}
	if interrupted {
		c.mu.Lock()
		c.log = withNote(c.log, logNote(now, "The canary was interrupted before, at %s; interrupted again, it is reported as it ended.", k.Interrupted.UTC().Format(time.RFC3339)))
		c.mu.Unlock()
	}
	r.st.Canary = nil
	return false
}

// canaryCutShort settles a canary the state file shows running at start:
// the runner crashed or was killed during it. The first time it runs
// again; the second it is reported exception/worker-shutdown, with the
// log its run left. Caller holds r.mu.
func (r *Runner) canaryCutShort(ct CurrentTask, rec *TaskRecord, now time.Time) *client.RunReport {
	k := r.st.Canary
	if ct.Kind != SourceCanary || k == nil || k.TaskID != ct.TaskID {
		return nil
	}
	logFile := k.LogFile
	k.LogFile = ""
	if k.Interrupted == nil {
		k.Interrupted = &now
		rec.Resolution = "interrupted (runner restarted): the canary runs once more"
		r.log.Info("the canary was cut short by a crash or a kill; it runs once more", "taskId", k.TaskID)
		return nil
	}
	log, err := readLeftLog(r.agentCfg.Load().TasksDir, logFile)
	if err != nil {
		r.log.Warn("the log of the canary cut short cannot be read; it is reported without", "taskId", k.TaskID, "error", err)
	}
	log = withNote(log, logNote(now, "Runner restarted at %s: the runner stopped before the canary ended (killed, crashed or the machine lost power). "+
		"The canary was interrupted before, at %s; interrupted again, it is reported exception/worker-shutdown.",
		now.UTC().Format(time.RFC3339), k.Interrupted.UTC().Format(time.RFC3339)))
	r.st.Canary = nil
	rec.Resolution = "exception/worker-shutdown (runner restarted; the canary was interrupted twice)"
	r.log.Warn("the canary was cut short a second time; reported as exception/worker-shutdown", "taskId", ct.TaskID)
	return &client.RunReport{TaskID: ct.TaskID, Kind: client.KindCanary, Result: client.ResultException, Reason: agent.ReasonWorkerShutdown,
		Started: ct.Started, Finished: now, Log: log}
}
