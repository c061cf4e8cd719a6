package provisioner

// The black-hole detector: on the replica holding the assigner lock, after
// new run reports (and every DetectInterval), each pool's machines are
// judged (blackhole_judge.go) and the flagged ones quarantined, within the
// pool's cap, with a reason in numbers, mirrored to the queue.
//
//	report ──▶ kick ──▶ pass (≥ 1 s apart): per pool judge ──▶ quarantine ≤ cap
//	quarantine: watch.judgedAfter = its last judged run (never judged again)
//	operator unquarantine: every run so far judged (not re-quarantined for them)
//	quarantine ending: blackhole_canary.go (the canary, where the pool sets
//	one; once ended, the watch forgets the quarantine)

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// detectorName is who the action record names for the detector's work.
const detectorName = "black-hole detector"

// detectMinGap keeps passes triggered by reports at least this far apart.
const detectMinGap = time.Second

// runPruneEvery is how often reports older than RunRetention are deleted.
const runPruneEvery = time.Hour

// detectSoon asks the detector for a pass (after new run reports).
func (s *Server) detectSoon() {
	select {
	case s.detectKick <- struct{}{}:
	default:
	}
}

// runDetector runs DetectOnce on the leading replica every DetectInterval
// and soon after reports, and prunes old reports.
func (s *Server) runDetector(ctx context.Context) error {
	if s.cfg.DetectInterval < 0 {
		return nil
	}
	t := time.NewTicker(s.cfg.DetectInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.detectKick:
		}
		if !s.Leading() {
			continue
		}
		if err := s.DetectOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("black-hole detection failed", "error", err)
		}
		if now := s.now(); now.Sub(lastPrune) >= runPruneEvery {
			n, err := s.store.PruneRunReports(ctx, now.Add(-s.cfg.RunRetention))
			if err != nil {
				s.log.Warn("pruning run reports failed", "error", err)
			} else {
				lastPrune = now
				if n > 0 {
					s.log.Info("run reports pruned", "count", n, "retention", s.cfg.RunRetention)
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(detectMinGap):
		}
	}
}

// DetectOnce judges every pool's machines and quarantines its black holes.
// Only one replica should run it at a time (the assigner's leader does).
func (s *Server) DetectOnce(ctx context.Context) error {
	mirrors, err := s.detectLocked(ctx)
	for _, q := range mirrors {
		s.mirrorQuarantine(ctx, q.m, q.until)
	}
	return err
}

func (s *Server) detectLocked(ctx context.Context) ([]queueMirror, error) {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return nil, err
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return nil, err
	}
	watches, err := s.store.Watches(ctx)
	if err != nil {
		return nil, err
	}
	// Canaries first: a machine released by its canary is judged on its
	// new runs like any other.
	done, err := s.canaryPass(ctx, pools, machines, watches)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range pools {
		q, err := s.detectPool(ctx, p, machines, watches)
		for _, m := range q {
			done = append(done, queueMirror{m: m, until: *m.QuarantinedUntil})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", p.PoolID, err))
		}
	}
	return done, errors.Join(errs...)
}

// detectPool judges one pool and quarantines its flagged machines, the
// strongest cases first, while the pool's cap allows.
func (s *Server) detectPool(ctx context.Context, p client.Pool, machines []*MachineRecord, watches map[string]Watch) ([]*MachineRecord, error) {
	pol, on := effectiveBlackHole(p.Spec.BlackHole)
	if !on {
		return nil, nil
	}
	now := s.now()
	window := min(pol.window, s.cfg.RunRetention)
	runs, err := s.runs.window(ctx, s.store, p.PoolID, now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	members := map[string]*MachineRecord{}
	candidates := map[string]int64{}
	excluded := map[string]bool{}
	auto := 0
	for _, m := range machines {
		if m.PoolID != p.PoolID {
			continue
		}
		members[m.MachineID] = m
		w := watches[m.MachineID]
		if quarantined(m, now) {
			excluded[m.MachineID] = true
			if detectorHolds(m, w, now) {
				auto++
			}
			continue
		}
		candidates[m.MachineID] = w.JudgedAfter
	}
	if len(runs) == 0 || len(candidates) == 0 {
		return nil, nil
	}
	j := judgePool(pol, runs, candidates, excluded)
	if j.note != "" && len(j.flagged) == 0 {
		s.log.Debug("black-hole detection", "pool", p.PoolID, "note", j.note)
	}
	limit := blackHoleCap(pol, len(members))
	var done []*MachineRecord
	for _, v := range j.flagged {
		reason := v.reason(pol)
		if auto >= limit {
			s.metrics.blackHoleCapped.WithLabelValues(p.PoolID).Inc()
			s.log.Warn("black hole not quarantined: the pool's cap is reached", "machine", v.machineID, "pool", p.PoolID,
				"quarantined", auto, "cap", limit, "reason", reason)
			continue
		}
		m := members[v.machineID]
		if err := s.quarantineBlackHole(ctx, m, v, reason, now.Add(pol.quarantineFor)); err != nil {
			return done, err
		}
		auto++
		done = append(done, m)
	}
	return done, nil
}

// blackHoleCap is how many of a pool's members may be in a quarantine set
// by the detector at once: maxShare of them, rounded down, but at least
// one so that small pools are protected too.
func blackHoleCap(pol blackHolePolicy, members int) int {
	return max(1, int(math.Floor(pol.maxShare*float64(members)+1e-9)))
}

// detectorHolds says whether m is in a quarantine the detector set (or
// extended for a canary) that has not ended. One an operator set over it
// is theirs, and does not count against the pool's cap.
func detectorHolds(m *MachineRecord, w Watch, now time.Time) bool {
	return w.AutoUntil != nil && m.QuarantinedUntil != nil && m.QuarantinedUntil.Equal(*w.AutoUntil) && now.Before(*w.AutoUntil)
}

// quarantineBlackHole records the verdict (its runs are never judged
// again), quarantines m and queues its directive, in that order: a crash
// in between loses a quarantine rather than repeating one.
func (s *Server) quarantineBlackHole(ctx context.Context, m *MachineRecord, v verdict, reason string, until time.Time) error {
	if err := s.store.SaveWatch(ctx, Watch{MachineID: m.MachineID, JudgedAfter: v.lastID, AutoUntil: &until}); err != nil {
		return err
	}
	m.QuarantinedUntil, m.QuarantineReason = &until, reason
	d := client.Directive{Kind: client.DirectiveQuarantine, Reason: reason, Until: &until, Created: s.now()}
	a := client.Action{Action: "quarantine", Who: detectorName, Why: reason + " (until " + until.Format(time.RFC3339) + ")", At: s.now()}
	if err := s.store.ApplyMoves(ctx, []MoveWrite{{Machine: m, Directive: d, Action: a}}); err != nil {
		return fmt.Errorf("quarantine black hole %s: %w", m.MachineID, err)
	}
	s.metrics.directives.WithLabelValues(d.Kind).Inc()
	s.metrics.blackHoles.WithLabelValues(m.PoolID).Inc()
	s.notify.notify(m.MachineID)
	s.log.Warn("black hole quarantined", "machine", m.MachineID, "pool", m.PoolID, "until", until, "reason", reason)
	s.changed()
	return nil
}
