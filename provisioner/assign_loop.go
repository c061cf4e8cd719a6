package provisioner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// demandConcurrency bounds parallel pendingTasks calls in one pass.
const demandConcurrency = 8

// runLeader competes for the assigner lock and, while holding it, runs a
// pass every AssignInterval and after every change.
func (s *Server) runLeader(ctx context.Context) error {
	retry := time.NewTicker(s.cfg.AssignInterval)
	defer retry.Stop()
	for {
		s.lockAttempts.Add(1)
		l, ok, err := s.store.TryLeadership(ctx)
		if err != nil {
			s.log.Warn("assigner lock unavailable", "error", err)
		}
		if ok {
			s.lead(ctx, l)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("assigner lock lost; competing again")
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
		}
	}
}

// lead runs passes until ctx ends or leadership is lost.
func (s *Server) lead(ctx context.Context, l Leadership) {
	defer l.Release()
	s.leaderTerms.Add(1)
	s.setLeading(true)
	defer s.setLeading(false)
	s.log.Info("this replica runs the assigner")
	t := time.NewTicker(s.cfg.AssignInterval)
	defer t.Stop()
	for {
		passCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.Lost():
				cancel()
			case <-passCtx.Done():
			}
		}()
		if err := s.AssignOnce(passCtx); err != nil && passCtx.Err() == nil {
			s.log.Warn("assigner pass failed", "error", err)
			s.noteError(fmt.Errorf("assigner pass: %w", err))
		}
		if err := s.renewCredentials(passCtx); err != nil && passCtx.Err() == nil {
			s.log.Warn("credential renewal failed", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-l.Lost():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// fetchDemand asks every pool's source, in parallel; pools whose source
// fails are left out (unknown demand).
func (s *Server) fetchDemand(ctx context.Context, pools []client.Pool) map[string]int64 {
	out := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, demandConcurrency)
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := s.demand.Pending(ctx, p)
			if err != nil {
				s.log.Warn("pending count unavailable; pool keeps its machines this pass", "pool", p.PoolID, "error", err)
				return
			}
			mu.Lock()
			out[p.PoolID] = n
			mu.Unlock()
			s.metrics.pending.WithLabelValues(p.PoolID).Set(float64(n))
		}()
	}
	wg.Wait()
	return out
}

// AssignOnce runs one assigner pass: complete moves whose machines have
// drained, then plan and start new ones.
func (s *Server) AssignOnce(ctx context.Context) error {
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return err
	}
	pending := s.fetchDemand(ctx, pools)
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return err
	}
	byID := map[string]*client.Pool{}
	for i := range pools {
		byID[pools[i].PoolID] = &pools[i]
	}
	var writes []MoveWrite
	for _, m := range machines {
		if m.MovingTo != "" && m.State == client.StateDrained && m.CurrentTask == nil {
			w, err := s.completeWrite(m, byID[m.MovingTo], "assigner")
			if err != nil {
				return err
			}
			writes = append(writes, w)
		}
	}
	moves, _ := plan(planInput{pools: pools, machines: machines, pending: pending, now: s.now(), moveInterval: s.cfg.MoveInterval, offlineAfter: s.cfg.OfflineAfter})
	for _, mv := range moves {
		w, err := s.startWrite(mv.machine, byID[mv.to], "assigner", fmt.Sprintf("demand: moving from %q to %q", mv.from, mv.to))
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	return s.applyMoves(ctx, writes)
}

// startMove begins moving m to pool (nil: unassign); see startWrite.
func (s *Server) startMove(ctx context.Context, m *MachineRecord, pool *client.Pool, who, why string) error {
	w, err := s.startWrite(m, pool, who, why)
	if err != nil {
		return err
	}
	return s.applyMoves(ctx, []MoveWrite{w})
}

// completeMove puts a drained machine in pool; see completeWrite.
func (s *Server) completeMove(ctx context.Context, m *MachineRecord, pool *client.Pool, who string) error {
	w, err := s.completeWrite(m, pool, who)
	if err != nil {
		return err
	}
	return s.applyMoves(ctx, []MoveWrite{w})
}

// applyMoves stores a pass's writes in one transaction, then wakes the
// machines' long-polls: waking before the commit would let a waiter read
// nothing and sleep through its directive.
func (s *Server) applyMoves(ctx context.Context, writes []MoveWrite) error {
	if len(writes) == 0 {
		return nil
	}
	if err := s.store.ApplyMoves(ctx, writes); err != nil {
		return err
	}
	for _, w := range writes {
		s.metrics.directives.WithLabelValues(w.Directive.Kind).Inc()
		if w.Directive.Kind == client.DirectiveReassign {
			s.metrics.assignments.WithLabelValues(w.Machine.PoolID).Inc()
			s.log.Info("machine assigned", "machine", w.Machine.MachineID, "to", w.Machine.PoolID, "by", w.Action.Who)
		}
		s.notify.notify(w.Machine.MachineID)
	}
	return nil
}

// startWrite begins moving m to pool (nil: unassign). An unassigned
// machine, or one already drained, moves at once; otherwise it is asked to
// drain and moves when it reports drained.
func (s *Server) startWrite(m *MachineRecord, pool *client.Pool, who, why string) (MoveWrite, error) {
	to := ""
	if pool != nil {
		to = pool.PoolID
	}
	now := s.now()
	m.LastMoved = &now
	m.MovingTo = to
	if m.PoolID == "" || (m.State == client.StateDrained && m.CurrentTask == nil) {
		return s.completeWrite(m, pool, who)
	}
	if to == "" {
		// Released machines still drain first; completeWrite then
		// leaves them unassigned.
		m.MovingTo = unassignTarget
	}
	return MoveWrite{
		Machine:   m,
		Directive: client.Directive{Kind: client.DirectiveDrain, Reason: why, Created: now},
		Action:    client.Action{Action: "drain-for-move", Who: who, Why: why, At: now},
	}, nil
}

// unassignTarget marks a move out of every pool.
const unassignTarget = "-"

// completeWrite puts a drained machine in pool (nil: none) and sends it the
// new assignment with fresh credentials.
func (s *Server) completeWrite(m *MachineRecord, pool *client.Pool, who string) (MoveWrite, error) {
	from := m.PoolID
	m.PoolID = ""
	if pool != nil && m.MovingTo != unassignTarget {
		m.PoolID = pool.PoolID
	}
	m.MovingTo = ""
	m.Draining = false
	now := s.now()
	m.LastMoved = &now
	as, err := s.assignment(poolOrNil(pool, m.PoolID), m.MachineID)
	if err != nil {
		return MoveWrite{}, err
	}
	if as.Credentials != nil {
		exp := as.Credentials.Expires
		m.CredentialsExpire = &exp
	}
	return MoveWrite{
		Machine:   m,
		Directive: client.Directive{Kind: client.DirectiveReassign, Assignment: &as, Reason: fmt.Sprintf("moved from %q", from), Created: now},
		Action:    client.Action{Action: "assign", Who: who, Why: fmt.Sprintf("from %q to %q", from, m.PoolID), At: now},
	}, nil
}

func poolOrNil(p *client.Pool, id string) *client.Pool {
	if id == "" {
		return nil
	}
	return p
}

// queueDirective stores a directive and wakes the machine's long-poll.
func (s *Server) queueDirective(ctx context.Context, machineID string, d client.Directive) error {
	d.Created = s.now()
	if _, err := s.store.AddDirective(ctx, machineID, d); err != nil {
		return err
	}
	s.metrics.directives.WithLabelValues(d.Kind).Inc()
	s.notify.notify(machineID)
	return nil
}

// renewCredentials sends new-credentials directives to machines whose
// credentials expire within RenewBefore.
func (s *Server) renewCredentials(ctx context.Context) error {
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	pools := map[string]*client.Pool{}
	for _, m := range machines {
		if m.CredentialsExpire == nil || m.PoolID == "" || m.CredentialsExpire.Sub(now) > s.cfg.RenewBefore {
			continue
		}
		pool, ok := pools[m.PoolID]
		if !ok {
			p, err := s.store.GetPool(ctx, m.PoolID)
			if err == nil {
				pool = &p
			}
			pools[m.PoolID] = pool
		}
		creds, err := s.issueCredentials(pool, m.MachineID)
		if err != nil || creds == nil {
			continue
		}
		exp := creds.Expires
		m.CredentialsExpire = &exp
		if err := s.store.SaveMachine(ctx, m); err != nil {
			return err
		}
		if err := s.queueDirective(ctx, m.MachineID, client.Directive{Kind: client.DirectiveNewCredentials, Credentials: creds, Reason: "credentials expire soon"}); err != nil {
			return err
		}
	}
	return nil
}

// initialPool picks the pool for a newly registered machine: the eligible
// pool furthest below its minimum, highest priority first; otherwise none,
// and the next assigner pass (woken by the registration) places it by
// demand.
func (s *Server) initialPool(ctx context.Context, facts client.Facts) (string, error) {
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return "", err
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return "", err
	}
	count := map[string]int{}
	now := s.now()
	for _, m := range machines {
		if quarantined(m, now) || m.Draining {
			continue
		}
		if m.MovingTo != "" {
			count[m.MovingTo]++
		} else {
			count[m.PoolID]++
		}
	}
	best, bestPrio, bestGap := "", 0, 0
	for _, p := range pools {
		gap := p.Spec.MinCapacity - count[p.PoolID]
		if gap <= 0 {
			continue
		}
		mt := compileConstraints(p.Spec.Constraints)
		if !mt.matches(&facts) {
			continue
		}
		if best == "" || p.Spec.Priority > bestPrio || (p.Spec.Priority == bestPrio && gap > bestGap) {
			best, bestPrio, bestGap = p.PoolID, p.Spec.Priority, gap
		}
	}
	return best, nil
}
