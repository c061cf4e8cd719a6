package runner

// The watchdog catches an agent loop that is stuck while the machine is
// fine: idle, healthy, claim gate open, and yet no claimWork has succeeded
// (empty polls count) for watchdog.timeout. It restarts the agent loop —
// fresh queue client, live log server and Pulse connection — and logs why.

import "time"

// watchdog restarts the agent loop when it has been silent too long.
func (r *Runner) watchdog() {
	timeout := r.cfg.Watchdog.Timeout.Duration
	if timeout <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.claimable() || len(r.st.CurrentTasks) > 0 || r.stopAgent == nil || r.healthTripped() {
		return
	}
	now := r.now()
	last := r.st.LastClaimAt
	if r.agentStarted.After(last) {
		last = r.agentStarted
	}
	if now.Sub(last) < timeout {
		return
	}
	r.log.Warn("watchdog: no successful claim or poll while idle and healthy; restarting the agent loop",
		"since", now.Sub(last).Truncate(time.Second), "lastClaimAt", r.st.LastClaimAt, "timeout", timeout)
	r.st.WatchdogRestarts++
	r.metrics.watchdog.Inc()
	r.agentStarted = now
	r.stopAgent(errWatchdog)
	r.stopAgent = nil
	r.commit()
}

// healthTripped reports whether any check is tripped. Caller holds r.mu.
func (r *Runner) healthTripped() bool {
	for _, c := range r.st.Checks {
		if c.Tripped {
			return true
		}
	}
	return false
}
