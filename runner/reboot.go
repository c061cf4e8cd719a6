package runner

// The reboot policy decides that the machine should reboot; the reboot
// itself waits for the running tasks:
//
//	decided (after a task, N tasks, exit code, HALT, max uptime, request)
//	   ──▶ pending: the claim gate closes
//	   ──no task running (a plain request stops them after drainGrace),
//	     and, unless asked for by an operator, no drain in force──▶
//	   boot-loop guard: bootLoopMax reboots already within bootLoopWindow?
//	       yes ──▶ quarantined (boot-loop), no reboot
//	       no  ──▶ reason written to the state file ──▶ reboot command
//	   after boot: the reason is reported (log, status lastReboot)

import (
	"fmt"
	"slices"
	"time"
)

// rebootAfterTask is the policy's reason to reboot after rec, or "".
// Caller holds r.mu.
func (r *Runner) rebootAfterTask(rec TaskRecord) string {
	c := r.cfg.Reboot
	switch {
	case c.AfterEveryTask:
		return fmt.Sprintf("reboot after every task (task %s ended)", rec.TaskID)
	case c.AfterTasks > 0 && r.st.TasksSinceBoot >= c.AfterTasks:
		return fmt.Sprintf("%s since boot (reboot.afterTasks %d)", plural(r.st.TasksSinceBoot, "task", "tasks"), c.AfterTasks)
	case slices.Contains(c.OnExitCodes, rec.ExitCode):
		return fmt.Sprintf("task %s exited with %d (reboot.onExitCodes)", rec.TaskID, rec.ExitCode)
	}
	return ""
}

// requestReboot records a reboot decision; grace > 0 means stop running
// tasks once it is over. Caller holds r.mu and commits.
func (r *Runner) requestReboot(reason string, manual bool, grace time.Duration) {
	if p := r.st.RebootPending; p != nil && !manual {
		return
	}
	if r.st.RebootIssued != nil {
		return
	}
	now := r.now()
	p := &Reboot{Reason: reason, RequestedAt: now, Manual: manual}
	if grace > 0 {
		p.StopTasksAt = now.Add(grace)
	}
	r.st.RebootPending = p
	r.log.Info("reboot decided; waiting for running tasks", "reason", reason, "manual", manual)
}

// uptimePolicy asks for a reboot when an idle machine is up too long.
func (r *Runner) uptimePolicy() {
	max := r.cfg.Reboot.MaxUptime.Duration
	if max <= 0 {
		return
	}
	up, err := r.probes.Uptime()
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if up < max || r.booting || r.stopping || r.st.Draining || len(r.st.CurrentTasks) > 0 || r.st.Quarantine != nil || r.st.RebootPending != nil || r.st.RebootIssued != nil {
		return
	}
	r.requestReboot(fmt.Sprintf("uptime %s past reboot.maxUptime %s", up.Truncate(time.Second), max), false, 0)
	r.commit()
}

// interruptForReboot stops running tasks once a plain reboot request's
// grace is over.
func (r *Runner) interruptForReboot() {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.st.RebootPending
	if p == nil || p.StopTasksAt.IsZero() || r.now().Before(p.StopTasksAt) || len(r.st.CurrentTasks) == 0 || r.stopAgent == nil {
		return
	}
	r.log.Warn("reboot grace over; stopping running tasks (worker-shutdown)", "tasks", len(r.st.CurrentTasks))
	r.stopAgent(errInterrupt)
}

// maxRebootHistory bounds the reboot history kept for the guard.
const maxRebootHistory = 50

// maybeReboot reboots when a reboot is pending and no task runs.
func (r *Runner) maybeReboot() {
	r.mu.Lock()
	p := r.st.RebootPending
	// A drained machine is in an operator's hands: the policy's reboot
	// waits for `runner resume` (and then happens before the next claim).
	if p == nil || len(r.st.CurrentTasks) > 0 || r.st.RebootIssued != nil || r.booting || (r.st.Draining && !p.Manual) {
		r.mu.Unlock()
		return
	}
	now := r.now()
	window := r.cfg.Reboot.BootLoopWindow.Duration
	recent := 0
	for _, t := range r.st.RebootHistory {
		if now.Sub(t) < window {
			recent++
		}
	}
	if !p.Manual && recent >= r.cfg.Reboot.BootLoopMax {
		until := now.Add(r.cfg.Quarantine.BootLoopFor.Duration)
		r.st.RebootPending = nil
		r.log.Error("boot loop: quarantined instead of rebooting", "reboots", recent, "window", window, "reason", p.Reason)
		if q := r.st.Quarantine; q == nil || !operatorSource(q.Source) {
			r.setQuarantine(&Quarantine{Source: SourceBootLoop, Until: &until,
				Reason: fmt.Sprintf("boot loop: %d reboots within %s; would have rebooted for: %s", recent, window, p.Reason)})
		}
		r.commit()
		r.mu.Unlock()
		return
	}
	issued := *p
	issued.IssuedAt = now
	r.st.RebootIssued = &issued
	r.st.RebootPending = nil
	r.st.RebootHistory = append(r.st.RebootHistory, now)
	if n := len(r.st.RebootHistory); n > maxRebootHistory {
		r.st.RebootHistory = r.st.RebootHistory[n-maxRebootHistory:]
	}
	r.st.TasksSinceBoot = 0
	// The reason is on disk before the machine goes down.
	r.commit()
	r.mu.Unlock()
	r.metrics.reboots.Inc()
	r.log.Warn("rebooting", "reason", issued.Reason)
	if err := r.rebootFunc(issued.Reason); err != nil {
		r.log.Error("reboot failed; resuming", "error", err)
		r.mu.Lock()
		issued.Error = err.Error()
		r.st.LastReboot = &issued
		r.st.RebootIssued = nil
		r.commit()
		r.mu.Unlock()
	}
}

// nextRebootReason says what the policy will reboot for next. Caller
// holds r.mu or works on a copy.
func nextRebootReason(st *State, c *Config, uptime time.Duration) string {
	rb := c.Reboot
	switch {
	case st.RebootIssued != nil:
		return "rebooting now: " + st.RebootIssued.Reason
	case st.RebootPending != nil:
		return "pending: " + st.RebootPending.Reason
	case rb.AfterEveryTask:
		return "after the next task"
	case rb.AfterTasks > 0:
		s := fmt.Sprintf("after %d more tasks", max(rb.AfterTasks-st.TasksSinceBoot, 1))
		if rb.MaxUptime.Duration > 0 {
			s += fmt.Sprintf(", or in %s of uptime", max(rb.MaxUptime.Duration-uptime, 0).Truncate(time.Second))
		}
		return s
	case rb.MaxUptime.Duration > 0:
		return fmt.Sprintf("in %s of uptime (when idle)", max(rb.MaxUptime.Duration-uptime, 0).Truncate(time.Second))
	case len(rb.OnExitCodes) > 0:
		return fmt.Sprintf("only on exit codes %v, HALT or request", rb.OnExitCodes)
	}
	return "only on HALT or request"
}
