package runner

// A black hole's canary: the provisioner's quarantine directive may carry
// a task to run while the machine stays quarantined (docs/provisioner.md,
// "Black holes"). The runner keeps it in the state file and hands it to
// the agent through the claim gate, as if claimed, once nothing else runs;
// the agent runs it with the pool's usual settings but no queue. Its
// result is reported as a run of kind canary, and the provisioner lifts
// the quarantine or renews it.
//
//	quarantine directive with a canary ──▶ state.canary (kept across restarts)
//	gate: canary kept, provisioner quarantine, checks passed, nothing running ──▶ agent runs it
//	run ends ──▶ reported (kind canary); state.canary cleared
//	unquarantine, or a quarantine directive without one ──▶ state.canary cleared (not run)

import (
	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

// SourceCanary is the kind of a canary's run in status and state.
const SourceCanary = "canary"

// canaryRun is the canary as the agent runs it: a local run under the
// provisioner's task id.
type canaryRun struct{ *agent.LocalRun }

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
	kept := *c
	r.st.Canary = &kept
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
				Reason: agent.ReasonMalformedPayload, Started: now, Finished: now})
		}
		r.commit()
		return nil
	}
	r.log.Info("running the canary", "taskId", c.TaskID)
	r.st.CurrentTasks = append(r.st.CurrentTasks, CurrentTask{TaskID: c.TaskID, Started: now, Kind: SourceCanary})
	return canaryRun{run}
}

// canaryDone clears the canary that ended. Caller holds r.mu.
func (r *Runner) canaryDone(run agent.Run) bool {
	if _, ok := run.(canaryRun); !ok {
		return false
	}
	if r.st.Canary != nil && r.st.Canary.TaskID == run.TaskID() {
		r.st.Canary = nil
	}
	return true
}
