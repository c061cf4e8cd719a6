package runner

// Quarantine keeps the runner alive but claiming nothing: the service
// manager sees a healthy service (no respawn loop) and the queue sees the
// worker quarantined. One quarantine at a time; a manual one is never
// replaced by an automatic one, and each automatic source lifts only its
// own:
//
//	health   tripped checks    → lifted when they clear
//	check    checks dir EXIT   → lifted when the checks pass again
//	failures K infra failures  → lifted at expiry
//	boot-loop reboot guard     → lifted at expiry
//	manual   runner quarantine → lifted by unquarantine or at its expiry
//	provisioner  quarantine directive → lifted by unquarantine or at its expiry

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// noExpiry is how far ahead the queue is told a quarantine without expiry
// ends; the runner lifts it explicitly.
const noExpiry = 5 * 365 * 24 * time.Hour

// setQuarantine puts the machine in quarantine. A quarantine from the
// source already in force continues it: since stays at its start, the
// reason and expiry are updated, and it is logged (and told to the queue)
// only when something changed. Caller holds r.mu and commits.
func (r *Runner) setQuarantine(q *Quarantine) {
	cur := r.st.Quarantine
	if cur != nil && operatorSource(cur.Source) && !operatorSource(q.Source) {
		return
	}
	if cur != nil && cur.Source == q.Source {
		untilChanged := !sameTime(cur.Until, q.Until)
		if cur.Reason == q.Reason && !untilChanged {
			return
		}
		cur.Reason, cur.Until = q.Reason, q.Until
		r.log.Warn("quarantined", "source", cur.Source, "reason", cur.Reason, "until", cur.Until, "since", cur.Since)
		if untilChanged {
			go r.syncQueueQuarantine()
		}
		return
	}
	q.Since = r.now()
	r.st.Quarantine = q
	r.log.Warn("quarantined", "source", q.Source, "reason", q.Reason, "until", q.Until)
	go r.syncQueueQuarantine()
}

// applyHealth quarantines the machine while built-in checks are tripped
// and lifts that quarantine when none is. The reason carries the latest
// values; only a change in which checks are tripped is a change of the
// quarantine (wasTripped: the tripped checks before this sample). Caller
// holds r.mu and commits.
func (r *Runner) applyHealth(wasTripped []string) {
	var names, details []string
	for _, cs := range r.st.Checks {
		if cs.Tripped {
			names = append(names, cs.Name)
			details = append(details, fmt.Sprintf("%s: %s (needs %s)", cs.Name, cs.Value, cs.Threshold))
		}
	}
	q := r.st.Quarantine
	switch {
	case len(names) == 0:
		if q != nil && q.Source == SourceHealth {
			r.log.Info("health checks cleared; quarantine lifted")
			r.liftQuarantine()
		}
	case q != nil && q.Source != SourceHealth:
		// Another cause holds the machine; health takes over when it ends.
	case q != nil && slices.Equal(names, wasTripped):
		// The same checks are still tripped: the latest values, quietly.
		q.Reason = "health: " + strings.Join(details, "; ")
	default:
		r.setQuarantine(&Quarantine{Source: SourceHealth, Reason: "health: " + strings.Join(details, "; ")})
	}
}

// trippedChecks names the tripped checks. Caller holds r.mu.
func (r *Runner) trippedChecks() []string {
	var names []string
	for _, cs := range r.st.Checks {
		if cs.Tripped {
			names = append(names, cs.Name)
		}
	}
	return names
}

// operatorSource says whether a quarantine source is a person's decision
// (by hand or through the provisioner), which no automatic one replaces.
func operatorSource(s string) bool { return s == SourceManual || s == SourceProvisioner }

// liftQuarantine ends the quarantine. Caller holds r.mu and commits.
func (r *Runner) liftQuarantine() {
	if r.st.Quarantine == nil {
		return
	}
	r.st.Quarantine = nil
	if r.st.InfraFailuresInARow > 0 {
		r.st.InfraFailuresInARow = 0
	}
	go r.syncQueueQuarantine()
}

// syncQueueQuarantine tells the queue the current quarantine (or its
// absence) with quarantineWorker, declaring the worker first if the queue
// does not know it yet. Calls are serialised and each sends the latest
// state, so the queue ends up agreeing with the runner.
func (r *Runner) syncQueueQuarantine() {
	if !*r.cfg.Quarantine.MirrorToQueue {
		return
	}
	r.mirrorMu.Lock()
	defer r.mirrorMu.Unlock()
	r.mu.Lock()
	q := r.st.Quarantine
	now := r.now()
	until := now
	if q != nil {
		until = now.Add(noExpiry)
		if q.Until != nil {
			until = *q.Until
		}
	}
	r.mu.Unlock()

	ac := r.agentCfg.Load()
	if ac.TaskQueueID == "" {
		// No pool assigned yet: the queue has no worker to quarantine.
		return
	}
	pid, wt, _ := strings.Cut(ac.TaskQueueID, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds := tcclient.Credentials{ClientID: ac.Credentials.ClientID, AccessToken: ac.Credentials.AccessToken, Certificate: ac.Credentials.Certificate}
	queue := tcqueue.New(&creds, ac.RootURL)
	queue.Context = ctx
	req := &tcqueue.QuarantineWorkerRequest{QuarantineUntil: tcclient.Time(until)}
	_, err := queue.QuarantineWorker(pid, wt, ac.WorkerGroup, ac.WorkerID, req)
	if err != nil && statusOf(err) == http.StatusNotFound {
		// The queue knows a worker only after its first claim or a declare.
		_, derr := queue.DeclareWorker(pid, wt, ac.WorkerGroup, ac.WorkerID, &tcqueue.WorkerRequest{Expires: tcclient.Time(now.Add(24 * time.Hour))})
		if derr == nil {
			_, err = queue.QuarantineWorker(pid, wt, ac.WorkerGroup, ac.WorkerID, req)
		} else {
			err = fmt.Errorf("declareWorker: %w", derr)
		}
	}
	result := "mirrored"
	if err != nil {
		result = fmt.Sprintf("not mirrored: %v", err)
		r.log.Warn("could not mirror the quarantine to the queue (the credentials may lack queue:quarantine-worker)", "error", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.Quarantine == q && q != nil {
		q.Queue = result
		r.commit()
	}
}

// statusOf is a failed client-go call's HTTP status, or 0.
func statusOf(err error) int {
	if e, ok := err.(*tcclient.APICallException); ok && e.CallSummary != nil && e.CallSummary.HTTPResponse != nil {
		return e.CallSummary.HTTPResponse.StatusCode
	}
	return 0
}
