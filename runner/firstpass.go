package runner

// The first pass: a machine proves itself healthy once after every start
// (a reboot is a start) before it claims anything. The hysteresis of the
// checks (tripAfter, clearAfter) smooths a machine that was healthy; it
// must not let a machine that is unhealthy from boot run tasks while its
// first bad samples are being counted.
//
//	start ──▶ waiting: state booting (heartbeat `starting`), claim gate closed
//	waiting ──every built-in check passed once, and the checks
//	         directory gave OK once──▶ started: the gate may open
//	started ──(until the process ends)──▶ checks trip and clear as usual
//
// While waiting, the built-in checks run every firstPassEvery (or
// checks.interval if shorter), the clock check with them, and the checks
// directory every checks.interval.

import (
	"fmt"
	"strings"
	"time"
)

// dirPending names the checks directory in the pending list before it has
// run since the start.
const dirPending = "checks directory"

// firstPassEvery is how often the built-in checks run while one has not
// passed since the start (checks.interval if that is shorter): a machine
// whose network came up late starts work seconds after, not a minute.
const firstPassEvery = 5 * time.Second

// builtinEvery is the period of the built-in checks. Caller holds r.mu.
func (r *Runner) builtinEvery() time.Duration {
	if !r.firstPassDone {
		return min(r.cfg.Checks.Interval.Duration, firstPassEvery)
	}
	return r.cfg.Checks.Interval.Duration
}

// requiredBuiltins are the built-in checks that must pass once after a
// start. uptime never fails (the reboot policy acts on it); the clock
// cannot be measured without a queue to ask.
func (r *Runner) requiredBuiltins() []string {
	names := []string{"disk", "memory", "cpu"}
	if r.agentCfg.Load().RootURL != "" {
		names = append(names, "clock")
	}
	if *r.cfg.Checks.KillLeftovers {
		names = append(names, "leftovers")
	}
	return names
}

// pendingChecks names the checks that have not passed since the runner
// started, built-in ones first, in a stable order. Caller holds r.mu.
func (r *Runner) pendingChecks() []string {
	if r.firstPassDone {
		return nil
	}
	var out []string
	for _, name := range r.requiredBuiltins() {
		if cs := r.findCheck(name); cs == nil || !cs.PassedSinceStart {
			out = append(out, name)
		}
	}
	if r.cfg.Checks.Dir != "" && !r.dirPassed {
		switch {
		case r.dirFailed == "":
			out = append(out, dirPending)
		case strings.HasPrefix(r.dirFailed, "check:"):
			out = append(out, r.dirFailed)
		default:
			out = append(out, "check:"+r.dirFailed)
		}
	}
	return out
}

// notePasses opens the way to claims once nothing is pending, and logs
// what is still pending whenever that changes. Caller holds r.mu and
// commits.
func (r *Runner) notePasses() {
	if r.firstPassDone {
		return
	}
	pending := r.pendingChecks()
	if len(pending) > 0 {
		if key := strings.Join(pending, ","); key != r.loggedPending {
			r.loggedPending = key
			r.log.Warn("not claiming until every check has passed once since the start", "pending", key, "detail", r.pendingDetail(pending))
		}
		return
	}
	r.firstPassDone = true
	r.log.Info("every check passed once since the start; claiming")
}

// pendingDetail says why each pending check is pending, for the status
// and the heartbeat: "disk: 10 MB free on /tasks (needs >= 10240 MB free)".
// Caller holds r.mu.
func (r *Runner) pendingDetail(pending []string) string {
	parts := make([]string, 0, len(pending))
	for _, name := range pending {
		cs := r.findCheck(name)
		var why string
		switch {
		case name == dirPending:
			why = "not run yet"
		case cs == nil && r.dirOutput != "":
			// The directory itself failed (unreadable), or the check is gone.
			why = r.dirOutput
		case cs == nil || cs.CheckedAt.IsZero():
			why = "not measured yet"
		case cs.Value == "":
			why = cs.Message
		default:
			why = fmt.Sprintf("%s (needs %s)", cs.Value, cs.Threshold)
			if cs.Message != "" {
				why += ": " + cs.Message
			}
		}
		parts = append(parts, name+": "+why)
	}
	return "waiting for first pass of: " + strings.Join(parts, "; ")
}

// findCheck is a check's entry, or nil. Caller holds r.mu.
func (r *Runner) findCheck(name string) *CheckStatus {
	for i := range r.st.Checks {
		if r.st.Checks[i].Name == name {
			return &r.st.Checks[i]
		}
	}
	return nil
}

// resetFirstPass forgets the samples of the previous process: health is
// measured afresh after every start. Caller holds r.mu and commits.
func (r *Runner) resetFirstPass() {
	for i := range r.st.Checks {
		c := &r.st.Checks[i]
		c.Tripped, c.PassedSinceStart, c.OK = false, false, false
		c.FailuresInARow, c.PassesInARow = 0, 0
		c.Value, c.Message, c.CheckedAt = "", "", time.Time{}
	}
	r.firstPassDone, r.dirPassed, r.dirFailed, r.dirOutput, r.loggedPending = false, false, "", "", ""
}

// noteDirVerdict records a run of the checks directory: each check's
// result, and whether the directory passed since the start. It says
// whether the verdict repeats the previous run's failure (not worth
// another warning). Caller holds r.mu and commits.
func (r *Runner) noteDirVerdict(v DirVerdict) (again bool) {
	for _, res := range v.Results {
		cs := r.checkStatus(res.Name, "script")
		passed := cs.PassedSinceStart || res.OK
		*cs = res
		cs.PassedSinceStart = passed
	}
	if v.Verdict == VerdictOK {
		r.dirPassed, r.dirFailed, r.dirOutput = true, "", ""
		r.notePasses()
		return false
	}
	again = r.dirFailed == v.Check && r.dirOutput == lastLine(v.Output)
	r.dirFailed, r.dirOutput = v.Check, lastLine(v.Output)
	return again
}

// dirRetryDue says whether the checks directory, never passed since the
// start, should run again (each checks.interval) to find out whether it
// passes now. A reboot on its way is the directory's answer, and a
// quarantine holds the machine anyway: no rerun then.
// Caller holds r.mu.
func (r *Runner) dirRetryDue() bool {
	return r.cfg.Checks.Dir != "" && !r.dirPassed && !r.booting && !r.stopping &&
		r.st.Quarantine == nil && r.st.RebootPending == nil && r.st.RebootIssued == nil
}
