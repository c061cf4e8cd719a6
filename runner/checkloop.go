package runner

// The checks between tasks: built-in probes and the checks directory on
// the ticker, and the interval they run at.

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// runBuiltins runs the built-in checks and applies health to quarantine.
// betweenTasks is the claim gate's call, with nothing running and nothing
// being claimed: only then are the task users left behind judged.
func (r *Runner) runBuiltins(ctx context.Context, forceClock, betweenTasks bool) {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	r.mu.Lock()
	now := r.now()
	clockDue := forceClock || now.Sub(r.lastClock) >= r.cfg.Checks.Interval.Duration || slices.Contains(r.pendingChecks(), "clock")
	running := len(r.st.CurrentTasks)
	betweenTasks = betweenTasks && running == 0 && r.polling == 0
	r.mu.Unlock()
	samples := r.measure(ctx, clockDue, running)
	if betweenTasks {
		if s, ok := r.leftTaskUsers(); ok {
			samples = append(samples, s)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastBuiltin = now
	if clockDue {
		r.lastClock = now
	}
	wasTripped := r.trippedChecks()
	r.applySamples(samples)
	r.notePasses()
	r.applyHealth(wasTripped)
	r.commit()
}

// runCheckDir runs the checks directory and acts on its verdict.
func (r *Runner) runCheckDir(ctx context.Context) DirVerdict {
	r.checkMu.Lock()
	v := RunCheckDir(ctx, r.cfg.Checks, r.log)
	r.checkMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if v.Verdict == VerdictInterrupted {
		// Stopping (or a caller that gave up) is not the machine's fault:
		// nothing is recorded and the checks stay due.
		r.log.Info("checks directory interrupted; the checks stay due", "check", v.Check)
		return v
	}
	r.checksDue = false
	r.lastDirChecks = r.now()
	again := r.noteDirVerdict(v)
	switch v.Verdict {
	case VerdictOK:
		if q := r.st.Quarantine; q != nil && q.Source == SourceCheck {
			r.log.Info("checks pass again; quarantine lifted")
			r.liftQuarantine()
		}
	case VerdictHalt:
		if !again {
			r.log.Warn("check asked for a reboot (HALT)", "check", v.Check, "output", lastLine(v.Output))
		}
		r.requestReboot(fmt.Sprintf("check %s: HALT: %s", v.Check, lastLine(v.Output)), false, 0)
	case VerdictExit:
		if !again {
			r.log.Warn("check asked to stop (EXIT)", "check", v.Check, "output", lastLine(v.Output))
		}
		if q := r.st.Quarantine; q == nil || !operatorSource(q.Source) {
			r.setQuarantine(&Quarantine{Source: SourceCheck, Reason: fmt.Sprintf("check %s: %s", v.Check, v.Output)})
		}
	}
	r.commit()
	return v
}

// ticker runs the periodic work: built-in checks every interval, the
// checks directory again while it keeps the machine quarantined, expiry of
// quarantines, the uptime reboot, drain deadlines and the watchdog.
func (r *Runner) ticker(ctx context.Context) {
	t := time.NewTicker(tickEvery(r.cfg))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		now := r.now()
		builtinDue := now.Sub(r.lastBuiltin) >= r.builtinEvery()
		dirDue := (r.st.Quarantine != nil && r.st.Quarantine.Source == SourceCheck || r.dirRetryDue()) && now.Sub(r.lastDirChecks) >= r.cfg.Checks.Interval.Duration
		if q := r.st.Quarantine; q != nil && q.Until != nil && !now.Before(*q.Until) {
			r.log.Info("quarantine expired", "source", q.Source, "reason", q.Reason)
			r.liftQuarantine()
			r.commit()
		}
		r.mu.Unlock()
		if builtinDue {
			r.runBuiltins(ctx, false, false)
		}
		if dirDue {
			r.runCheckDir(ctx)
		}
		r.uptimePolicy()
		r.interruptForReboot()
		r.watchdog()
		r.maybeReboot()
	}
}

// tickEvery is the ticker's period: fine enough for short test timeouts.
func tickEvery(c *Config) time.Duration {
	d := time.Second
	if w := c.Watchdog.Timeout.Duration; w > 0 && w/4 < d {
		d = w / 4
	}
	if e := c.Quarantine.FailuresFor.Duration; e > 0 && e/4 < d {
		d = e / 4
	}
	return max(d, 50*time.Millisecond)
}
