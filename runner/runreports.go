package runner

// Finished runs reported to the provisioner, which judges from them
// whether the machine fails what passes elsewhere (docs/provisioner.md,
// "Black holes"). A run is queued in the link's state file when it ends
// and sent after the next heartbeat (which it hastens); it leaves the
// queue once the provisioner has it. The provisioner counts a run once,
// so a report sent again after a lost answer does no harm.
//
//	run ends ──▶ queued (state file) ──heartbeat ok──▶ POST runs ──ok──▶ dropped
//	                                                     ├─ 400 naming a log ──▶ sent again without the logs
//	                                                     ├─ 400 ──▶ dropped (it would be refused again)
//	                                                     ├─ no such route ──▶ dropped, no more queued
//	                                                     └─ other error ──▶ kept for the next heartbeat
//
// A canary's report carries the tail of its log (canarylog.go); a
// provisioner that predates logs refuses the field, and the run is worth
// more than its log, so it goes again without. One request carries at
// most one log: each may be client.MaxRunLog bytes, several times that as
// JSON, and the provisioner bounds a request's body (1 MiB).

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

// maxPendingRuns bounds the queue: a provisioner out of reach for days
// does not grow the state file without end; the oldest runs go first.
const maxPendingRuns = 1000

// ReportRun queues a finished run for the provisioner.
func (l *ProvisionerLink) ReportRun(r client.RunReport) {
	l.mu.Lock()
	if l.runsRefused {
		l.mu.Unlock()
		return
	}
	l.st.PendingRuns = append(l.st.PendingRuns, r)
	if n := len(l.st.PendingRuns) - maxPendingRuns; n > 0 {
		l.log.Warn("too many finished runs not yet reported to the provisioner; the oldest are dropped", "dropped", n)
		l.st.PendingRuns = slices.Delete(l.st.PendingRuns, 0, n)
	}
	if err := l.saveLocked(); err != nil {
		l.log.Error("cannot save the finished run for the provisioner", "taskId", r.TaskID, "error", err)
	}
	l.mu.Unlock()
	l.HeartbeatNow()
}

// PendingRuns is how many finished runs wait to be reported.
func (l *ProvisionerLink) PendingRuns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.st.PendingRuns)
}

// flushRuns sends the queued runs, client.MaxRunReports at a time.
func (l *ProvisionerLink) flushRuns(ctx context.Context, id, tok string) {
	for {
		batch := l.nextBatch()
		if len(batch) == 0 {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := l.anon.WithToken(tok).ReportRuns(cctx, id, batch)
		cancel()
		var ae *client.APIError
		switch {
		case err == nil:
			l.log.Debug("finished runs reported", "accepted", res.Accepted, "duplicates", res.Duplicates)
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Body.Message, "no endpoint"):
			l.log.Warn("the provisioner predates run reports; finished runs are not reported", "error", err)
			l.mu.Lock()
			l.runsRefused = true
			l.mu.Unlock()
			l.forgetRuns(nil)
			return
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest && strings.HasSuffix(ae.Body.Field, ".log") && l.dropLogs(batch):
			l.log.Warn("the provisioner refused a canary's log; the runs are sent again without their logs", "error", err)
			continue
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			l.log.Warn("the provisioner refused finished runs; they are dropped", "runs", len(batch), "error", err)
		default:
			l.log.Warn("finished runs not reported; they are sent again after the next heartbeat", "runs", len(batch), "error", err)
			return
		}
		l.forgetRuns(batch)
	}
}

// nextBatch is the next request's runs: the oldest queued, at most
// client.MaxRunReports, and at most one of them with a log.
func (l *ProvisionerLink) nextBatch() []client.RunReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, logs := 0, 0
	for _, r := range l.st.PendingRuns[:min(len(l.st.PendingRuns), client.MaxRunReports)] {
		if r.Log != "" {
			if logs++; logs > 1 {
				break
			}
		}
		n++
	}
	return slices.Clone(l.st.PendingRuns[:n])
}

// pendingKey names a queued run.
type pendingKey struct {
	task      string
	run, bn   int
	kind      string
	finishedN int64
}

func keyOf(r client.RunReport) pendingKey {
	return pendingKey{r.TaskID, r.RunID, r.BuildNumber, r.Kind, r.Finished.UnixNano()}
}

// keysOf names the runs of batch.
func keysOf(batch []client.RunReport) map[pendingKey]bool {
	keys := map[pendingKey]bool{}
	for _, r := range batch {
		keys[keyOf(r)] = true
	}
	return keys
}

// forgetRuns drops sent runs from the queue (all of it when sent is nil).
func (l *ProvisionerLink) forgetRuns(sent []client.RunReport) {
	done := keysOf(sent)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.PendingRuns = slices.DeleteFunc(l.st.PendingRuns, func(r client.RunReport) bool { return sent == nil || done[keyOf(r)] })
	if err := l.saveLocked(); err != nil {
		l.log.Error("cannot save the provisioner link state", "error", err)
	}
}

// dropLogs removes the logs of batch's queued runs; false when they had
// none (the refusal was not about a log).
func (l *ProvisionerLink) dropLogs(batch []client.RunReport) bool {
	in := keysOf(batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	dropped := false
	for i := range l.st.PendingRuns {
		if r := &l.st.PendingRuns[i]; r.Log != "" && in[keyOf(*r)] {
			r.Log, dropped = "", true
		}
	}
	if err := l.saveLocked(); err != nil {
		l.log.Error("cannot save the provisioner link state", "error", err)
	}
	return dropped
}

// runReport is a finished run as the provisioner takes it; ok is false
// for a run whose resolution the runner did not report (cancelled, claim
// lost), which is the queue's to tell.
func runReport(rec TaskRecord, res agent.RunResult) (client.RunReport, bool) {
	if !res.Reported || res.Resolution.State == "" {
		return client.RunReport{}, false
	}
	r := client.RunReport{TaskID: rec.TaskID, RunID: rec.RunID, Kind: client.KindTaskcluster,
		Result: res.Resolution.State, Reason: res.Resolution.Reason, Started: rec.Started, Finished: rec.Ended}
	if rec.Buildbot != nil && rec.Buildbot.Builder != "" {
		r.Kind, r.Builder, r.BuildNumber = client.KindBuildbot, rec.Buildbot.Builder, rec.Buildbot.BuildNumber
	}
	if rec.Kind == SourceCanary {
		r.Kind = client.KindCanary
	}
	if res.ExitCode >= 0 {
		code := res.ExitCode
		r.ExitCode = &code
	}
	if r.Started.IsZero() || r.Started.After(r.Finished) {
		r.Started = r.Finished
	}
	return r, true
}
