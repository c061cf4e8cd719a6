package runner

// What the runner does when a run ends: the record kept for status, the
// counters and the infrastructure-failure streak behind quarantine.

import (
	"context"
	"fmt"
	"slices"

	"github.com/labrunner/labrunner/agent"
)

// preflight refuses a task claimed while a health check is tripped.
func (r *Runner) preflight(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q := r.st.Quarantine; q != nil && q.Source == SourceHealth {
		return fmt.Errorf("machine unhealthy: %s", q.Reason)
	}
	return nil
}

// infraReasons are the resolutions that blame the machine, not the task.
var infraReasons = []string{agent.ReasonInternalError, agent.ReasonResourceUnavailable}

// runDone records a finished run and applies the policies.
func (r *Runner) runDone(run agent.Run, res agent.RunResult) {
	r.mu.Lock()
	now := r.now()
	rec := TaskRecord{TaskID: run.TaskID(), RunID: run.RunID(), Ended: now, ExitCode: res.ExitCode, Resolution: res.Resolution.String()}
	rec.Kind, rec.Buildbot = runKind(run)
	canary, isCanary := run.(*canaryRun)
	again := false
	if isCanary {
		rec.Kind = SourceCanary
		again = r.canaryEnded(canary, res, &rec)
	}
	if !res.Reported {
		rec.Resolution = "not reported (" + res.Resolution.String() + ")"
		if res.Resolution.State == "" {
			rec.Resolution = "cancelled or claim lost"
		}
	}
	r.st.CurrentTasks = slices.DeleteFunc(r.st.CurrentTasks, func(c CurrentTask) bool {
		if c.TaskID == rec.TaskID && c.RunID == rec.RunID {
			rec.Started = c.Started
			return true
		}
		return false
	})
	r.addRecord(rec)
	r.st.TasksSinceBoot++
	r.st.TasksTotal++
	r.metrics.tasks.WithLabelValues(res.Resolution.String()).Inc()
	switch {
	case res.Resolution.State == agent.StateException && slices.Contains(infraReasons, res.Resolution.Reason):
		r.st.InfraFailuresInARow++
		if k := r.cfg.Quarantine.AfterInfraFailures; k > 0 && r.st.InfraFailuresInARow >= k {
			until := now.Add(r.cfg.Quarantine.FailuresFor.Duration)
			r.setQuarantine(&Quarantine{Source: SourceFailures, Until: &until,
				Reason: fmt.Sprintf("%d infrastructure failures in a row, the last %s on task %s", r.st.InfraFailuresInARow, rec.Resolution, rec.TaskID)})
		}
	case res.Reported && res.Resolution.Reason != agent.ReasonWorkerShutdown:
		r.st.InfraFailuresInARow = 0
	}
	if reason := r.rebootAfterTask(rec); reason != "" {
		r.requestReboot(reason, false, 0)
	}
	r.checksDue = r.cfg.Checks.Dir != ""
	if len(r.st.CurrentTasks) == 0 {
		r.releaseWhenIdle()
	}
	r.commit()
	link := r.link
	r.mu.Unlock()
	if report, ok := runReport(rec, res); ok && link != nil && !again {
		if isCanary {
			report.Log = canary.logTail()
		}
		link.ReportRun(report)
	}
	r.maybeReboot()
}

// maxRecent is how many finished runs status shows.
const maxRecent = 10

// addRecord keeps the newest finished runs. Caller holds r.mu.
func (r *Runner) addRecord(rec TaskRecord) {
	r.st.RecentTasks = append([]TaskRecord{rec}, r.st.RecentTasks...)
	if len(r.st.RecentTasks) > maxRecent {
		r.st.RecentTasks = r.st.RecentTasks[:maxRecent]
	}
}

// runningTaskIDs are the tasks whose processes are allowed to live.
func (r *Runner) runningTaskIDs() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]bool{}
	for _, c := range r.st.CurrentTasks {
		m[c.TaskID] = true
	}
	return m
}
