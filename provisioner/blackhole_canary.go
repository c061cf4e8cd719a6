package provisioner

// A black hole's recovery probe. When the detector's quarantine of a
// machine nears its end and the pool sets blackHole.canary, the machine
// is kept quarantined and sent the canary (with the quarantine directive
// that extends it); the runner runs it with no queue and reports it as a
// run of kind canary. The detector pass then decides:
//
//	quarantine ends (within canaryLead, before its end) ──▶ canary sent, quarantined until deadline + quarantineFor
//	canary report completed ──▶ released (unquarantine)
//	canary report failed or exception ──▶ quarantined again for quarantineFor
//	no report by the deadline (maxRunTime + canaryGrace) ──▶ quarantined again
//	the quarantine changed by someone else meanwhile ──▶ the canary is forgotten
//	the quarantine's end passed (no canary, or no pass in time) ──▶ forgotten
//
// Without a canary the quarantine simply ends, as before. A canary is
// only ever sent before the end: past it, the runner has lifted the
// quarantine by itself and claims again, so its new runs are the probe,
// and the watch forgets the quarantine (else every machine the detector
// ever quarantined would be sent one when a pool first sets a canary).
// Sending one extends a detector's quarantine, so the pool's cap holds:
// a pool over its cap (lowered since, or with fewer machines) lets the
// quarantine end instead.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/taskcluster/slugid-go/slugid"

	"github.com/labrunner/labrunner/provisioner/client"
)

// canaryGrace is what a canary's deadline adds to its maxRunTime: the
// directive's delivery, a task still running when the quarantine began,
// downloads, and the report's retries.
const canaryGrace = 15 * time.Minute

// maxCanaryRunTime is the longest maxRunTime a canary may ask for, as for
// any generic-worker task (its payload schema's maximum).
const maxCanaryRunTime = 86400

// canaryRunTime checks a pool's canary payload where the provisioner can
// (the agent checks the rest when it runs it) and returns its maxRunTime.
func canaryRunTime(payload json.RawMessage) (time.Duration, *apiError) {
	const field = "blackHole.canary"
	var p struct {
		Command    json.RawMessage `json:"command"`
		MaxRunTime json.RawMessage `json:"maxRunTime"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || bytes.Equal(bytes.TrimSpace(payload), []byte("null")) || !bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		return 0, badField(field, "must be a task payload (a JSON object with command and maxRunTime, as generic-worker takes): leave it out for no canary")
	}
	var cmds []json.RawMessage
	if err := json.Unmarshal(p.Command, &cmds); err != nil || len(cmds) == 0 {
		return 0, badField(field+".command", "missing or empty: give the commands to run, such as [[\"/bin/sh\", \"-c\", \"exit 0\"]]")
	}
	var secs int64
	if err := json.Unmarshal(p.MaxRunTime, &secs); err != nil || secs < 1 || secs > maxCanaryRunTime {
		return 0, badField(field+".maxRunTime", "must be whole seconds from 1 to %d, not %s", maxCanaryRunTime, string(bytes.TrimSpace(p.MaxRunTime)))
	}
	return time.Duration(secs) * time.Second, nil
}

// canaryLead is how long before the quarantine's end the canary is sent,
// so that the runner, which lifts a quarantine at its expiry by itself,
// is told to keep it before it would claim again.
func (s *Server) canaryLead() time.Duration {
	return max(time.Minute, 2*s.cfg.DetectInterval)
}

// queueMirror is a quarantine to tell the queue after the assigner's lock
// is released: until, or a past time to lift it.
type queueMirror struct {
	m     *MachineRecord
	until time.Time
}

// canaryPass starts, judges and times out the canaries of every pool's
// machines, and forgets quarantines that have ended; watches is updated
// with what it saves, for the judgement that follows in the same pass.
// Caller holds s.assignMu.
func (s *Server) canaryPass(ctx context.Context, pools []client.Pool, machines []*MachineRecord, watches map[string]Watch) ([]queueMirror, error) {
	byID := map[string]*client.Pool{}
	for i := range pools {
		byID[pools[i].PoolID] = &pools[i]
	}
	now := s.now()
	rooms := map[string]*capRoom{}
	for _, m := range machines {
		r := rooms[m.PoolID]
		if r == nil {
			r = &capRoom{}
			rooms[m.PoolID] = r
		}
		r.members++
		if detectorHolds(m, watches[m.MachineID], now) {
			r.held++
		}
	}
	var out []queueMirror
	var errs []error
	for _, m := range machines {
		w, ok := watches[m.MachineID]
		if !ok || w.AutoUntil == nil {
			continue
		}
		mirror, err := s.canaryStep(ctx, byID[m.PoolID], m, &w, rooms[m.PoolID])
		if err != nil {
			errs = append(errs, fmt.Errorf("canary of %s: %w", m.MachineID, err))
		} else {
			watches[m.MachineID] = w
		}
		if mirror != nil {
			out = append(out, *mirror)
		}
	}
	return out, errors.Join(errs...)
}

// capRoom is a pool's machines and how many of them the detector holds
// in quarantine, for the cap.
type capRoom struct{ members, held int }

// canaryStep moves one machine's canary on, if it has one due; w is
// updated with what is saved.
func (s *Server) canaryStep(ctx context.Context, pool *client.Pool, m *MachineRecord, w *Watch, room *capRoom) (*queueMirror, error) {
	now := s.now()
	// The detector's quarantine still holds as it set it: nobody lifted
	// or replaced it meanwhile.
	ours := m.QuarantinedUntil != nil && m.QuarantinedUntil.Equal(*w.AutoUntil)
	var bh *client.BlackHolePolicy
	if pool != nil {
		bh = pool.Spec.BlackHole
	}
	pol, _ := effectiveBlackHole(bh)
	switch {
	case w.CanaryTask != "" && !ours:
		s.log.Info("canary forgotten: the machine's quarantine was changed meanwhile", "machine", m.MachineID, "task", w.CanaryTask)
		w.CanaryTask, w.CanaryDeadline = "", nil
		return nil, s.store.SaveWatch(ctx, *w)
	case !now.Before(*w.AutoUntil):
		// Ended: the runner lifted it at its expiry, its new runs are
		// judged like any machine's. A canary still due was not judged
		// in time (no leading replica then); it is stale now.
		s.log.Info("black-hole quarantine ended", "machine", m.MachineID, "pool", m.PoolID, "until", *w.AutoUntil, "canary", w.CanaryTask)
		w.AutoUntil, w.CanaryTask, w.CanaryDeadline = nil, "", nil
		return nil, s.store.SaveWatch(ctx, *w)
	case w.CanaryTask != "":
		rep, err := s.store.FindRunReport(ctx, m.MachineID, w.CanaryTask, client.KindCanary)
		switch {
		case err == nil && rep.Result == client.ResultCompleted:
			return s.releaseAfterCanary(ctx, m, w)
		case err == nil:
			return s.renewAfterCanary(ctx, m, w, pol, "failed", describeCanaryRun(rep))
		case !errors.Is(err, ErrNotFound):
			return nil, err
		case w.CanaryDeadline != nil && !now.Before(*w.CanaryDeadline):
			return s.renewAfterCanary(ctx, m, w, pol, "timeout",
				fmt.Sprintf("no report by %s (task %s)", w.CanaryDeadline.UTC().Format(time.RFC3339), w.CanaryTask))
		}
		return nil, nil
	case ours && bh != nil && len(bh.Canary) > 0 && !now.Before(w.AutoUntil.Add(-s.canaryLead())):
		// This machine is one of those held: extending its quarantine
		// keeps the pool at most at its cap, or lets it shrink to it.
		if limit := blackHoleCap(pol, room.members); room.held > limit {
			room.held--
			s.metrics.blackHoleCapped.WithLabelValues(m.PoolID).Inc()
			s.log.Warn("canary not sent: the pool's cap is exceeded, the quarantine ends", "machine", m.MachineID, "pool", m.PoolID,
				"quarantined", room.held+1, "cap", limit, "until", *w.AutoUntil)
			return nil, nil
		}
		return s.startCanary(ctx, m, w, pol, bh.Canary)
	}
	return nil, nil
}

// describeCanaryRun says how a canary failed: its result, the exception's
// reason or the exit code, and its task.
func describeCanaryRun(r RunRecord) string {
	return canaryResult(r.RunReport) + " (task " + r.TaskID + ")"
}

// canaryResult is a canary's result, the exception's reason or the exit
// code: "failed, exit code 1", "exception worker-shutdown".
func canaryResult(r client.RunReport) string {
	what := r.Result
	if r.Reason != "" {
		what += " " + r.Reason
	}
	if r.ExitCode != nil {
		what += fmt.Sprintf(", exit code %d", *r.ExitCode)
	}
	return what
}

// startCanary sends the canary with a quarantine lasting past its
// deadline, so that the machine claims nothing until it is judged even if
// this provisioner is away then.
func (s *Server) startCanary(ctx context.Context, m *MachineRecord, w *Watch, pol blackHolePolicy, payload json.RawMessage) (*queueMirror, error) {
	runTime, aerr := canaryRunTime(payload)
	if aerr != nil {
		// Validated when the pool was stored; a bad one is skipped.
		return nil, fmt.Errorf("pool %s: %s: %s", m.PoolID, aerr.field, aerr.msg)
	}
	now := s.now()
	deadline := now.Add(runTime + canaryGrace)
	until := deadline.Add(pol.quarantineFor)
	task := slugid.Nice()
	reason := fmt.Sprintf("canary running (task %s, due by %s): %s", task, deadline.UTC().Format(time.RFC3339), m.QuarantineReason)
	w.AutoUntil, w.CanaryTask, w.CanaryDeadline = &until, task, &deadline
	if err := s.store.SaveWatch(ctx, *w); err != nil {
		return nil, err
	}
	d := client.Directive{Kind: client.DirectiveQuarantine, Reason: reason, Until: &until, Created: now,
		Canary: &client.Canary{TaskID: task, Payload: payload}}
	if err := s.detectorWrite(ctx, m, until, reason, d, "canary"); err != nil {
		return nil, err
	}
	s.metrics.canaries.WithLabelValues(m.PoolID, "started").Inc()
	s.log.Info("canary sent to a black hole at the end of its quarantine", "machine", m.MachineID, "pool", m.PoolID, "task", task, "deadline", deadline)
	return &queueMirror{m: m, until: until}, nil
}

// releaseAfterCanary ends the quarantine of a machine whose canary passed.
func (s *Server) releaseAfterCanary(ctx context.Context, m *MachineRecord, w *Watch) (*queueMirror, error) {
	task := w.CanaryTask
	w.AutoUntil, w.CanaryTask, w.CanaryDeadline = nil, "", nil
	if err := s.store.SaveWatch(ctx, *w); err != nil {
		return nil, err
	}
	now := s.now()
	reason := "canary passed (task " + task + ")"
	m.QuarantinedUntil, m.QuarantineReason = nil, ""
	d := client.Directive{Kind: client.DirectiveUnquarantine, Reason: reason, Created: now}
	a := client.Action{Action: "unquarantine", Who: detectorName, Why: reason, At: now}
	if err := s.store.ApplyMoves(ctx, []MoveWrite{{Machine: m, Directive: d, Action: a}}); err != nil {
		return nil, fmt.Errorf("release %s: %w", m.MachineID, err)
	}
	s.afterDetectorWrite(m, d)
	s.metrics.canaries.WithLabelValues(m.PoolID, "passed").Inc()
	s.log.Info("black hole released: its canary passed", "machine", m.MachineID, "pool", m.PoolID, "task", task)
	// A past date lifts the queue's quarantine.
	return &queueMirror{m: m, until: now.Add(-time.Minute)}, nil
}

// renewAfterCanary quarantines a machine again for quarantineFor: its
// canary failed (outcome "failed") or did not report ("timeout").
func (s *Server) renewAfterCanary(ctx context.Context, m *MachineRecord, w *Watch, pol blackHolePolicy, outcome, why string) (*queueMirror, error) {
	now := s.now()
	until := now.Add(pol.quarantineFor)
	w.AutoUntil, w.CanaryTask, w.CanaryDeadline = &until, "", nil
	if err := s.store.SaveWatch(ctx, *w); err != nil {
		return nil, err
	}
	reason := "black hole: canary failed: " + why
	d := client.Directive{Kind: client.DirectiveQuarantine, Reason: reason, Until: &until, Created: now}
	if err := s.detectorWrite(ctx, m, until, reason, d, "quarantine"); err != nil {
		return nil, err
	}
	s.metrics.canaries.WithLabelValues(m.PoolID, outcome).Inc()
	s.log.Warn("black hole quarantined again: its canary failed", "machine", m.MachineID, "pool", m.PoolID, "until", until, "reason", reason)
	return &queueMirror{m: m, until: until}, nil
}

// detectorWrite quarantines m until until with d, recording action by the
// detector, in one transaction.
func (s *Server) detectorWrite(ctx context.Context, m *MachineRecord, until time.Time, reason string, d client.Directive, action string) error {
	m.QuarantinedUntil, m.QuarantineReason = &until, reason
	a := client.Action{Action: action, Who: detectorName, Why: reason + " (until " + until.Format(time.RFC3339) + ")", At: s.now()}
	if err := s.store.ApplyMoves(ctx, []MoveWrite{{Machine: m, Directive: d, Action: a}}); err != nil {
		return fmt.Errorf("quarantine %s: %w", m.MachineID, err)
	}
	s.afterDetectorWrite(m, d)
	return nil
}

// afterDetectorWrite counts the directive, wakes the machine's long-poll
// and tells the dashboards.
func (s *Server) afterDetectorWrite(m *MachineRecord, d client.Directive) {
	s.metrics.directives.WithLabelValues(d.Kind).Inc()
	s.notify.notify(m.MachineID)
	s.changed()
}
