package provisioner

// The history sampler. Every HistoryInterval each replica records that it
// is alive (the system map's replica list); the replica holding the
// assigner lock also samples:
//
//	tick ─▶ leading? ──no──▶ record replica row
//	          │yes
//	          ▼
//	   size every pool (pending, machines, target, recommendation) ─┐
//	   each machine's state; changes since the last tick ───────────┤
//	                                                                 ▼
//	                               one transaction: pool_samples + machine_states
//	                               hourly: prune older than HistoryRetention
//
// Only one replica samples, so a pool gets one row per tick whatever the
// number of replicas. The last state written per machine is cached for
// the leader's term and read back from the database when a term starts,
// so a new leader writes only real changes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// pruneEvery is how often old history is deleted (more often when the
// retention is short: a tenth of it).
const pruneEvery = time.Hour

// historyState is the sampler's memory between ticks.
type historyState struct {
	mu sync.Mutex
	// last is each machine's latest recorded state, valid for term.
	last      map[string]MachineState
	term      int64
	lastPrune time.Time
	started   time.Time
	// lastErr is this replica's most recent background error (assigner
	// pass, sampling), shown on the system map.
	lastErr   string
	lastErrAt *time.Time
}

// noteError remembers a background failure for the system map.
func (s *Server) noteError(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	now := s.now()
	s.hist.mu.Lock()
	s.hist.lastErr, s.hist.lastErrAt = err.Error(), &now
	s.hist.mu.Unlock()
}

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "provisioner"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// historyStore is the store's history side, nil when it has none.
func (s *Server) historyStore() HistoryStore {
	hs, _ := s.store.(HistoryStore)
	return hs
}

// runHistory ticks until ctx ends.
func (s *Server) runHistory(ctx context.Context) error {
	hs := s.historyStore()
	if hs == nil {
		s.log.Warn("the store keeps no history: the dashboard's charts and replica list stay empty")
		return nil
	}
	s.hist.mu.Lock()
	s.hist.started = s.now()
	s.hist.mu.Unlock()
	t := time.NewTicker(s.cfg.HistoryInterval)
	defer t.Stop()
	// A replica that has just become the leader samples at once rather
	// than up to an interval later, so a fresh system has a first point.
	watch := time.NewTicker(time.Second)
	defer watch.Stop()
	sampledTerm := int64(-1)
	for {
		if s.Leading() {
			sampledTerm = s.leaderTerms.Load()
		}
		s.historyTick(ctx, hs)
		for next := false; !next; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				next = true
			case <-watch.C:
				next = s.Leading() && s.leaderTerms.Load() != sampledTerm
			}
		}
	}
}

// historyTick samples (on the leader) and records this replica.
func (s *Server) historyTick(ctx context.Context, hs HistoryStore) {
	if s.Leading() {
		if err := s.sampleHistory(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("history sample failed", "error", err)
			s.noteError(err)
		}
	}
	if err := s.saveReplica(ctx, hs); err != nil && ctx.Err() == nil {
		s.log.Warn("replica liveness not recorded", "error", err)
	}
}

func (s *Server) saveReplica(ctx context.Context, hs HistoryStore) error {
	return hs.SaveReplica(ctx, s.selfReplica(s.now()))
}

// timelineState is the state a machine's timeline shows: quarantined and
// offline first (the machine cannot take work whatever it reports), else
// what it reported.
func timelineState(m *MachineRecord, now time.Time, offlineAfter time.Duration) (state, detail string) {
	switch {
	case quarantined(m, now):
		return "quarantined", m.QuarantineReason
	case !online(m, now, offlineAfter):
		return "offline", ""
	case m.State == "":
		return client.StateStarting, ""
	}
	return m.State, ""
}

// sampleHistory takes one sample of every pool and records machines whose
// state changed; exported to tests through the package.
func (s *Server) sampleHistory(ctx context.Context) error {
	hs := s.historyStore()
	if hs == nil {
		return nil
	}
	now := s.now()
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	sizes, aerr := s.sizeAll(ctx, pools, machines)
	if aerr != nil {
		return fmt.Errorf("history: size pools: %s", aerr.msg)
	}
	samples := make([]PoolSample, 0, len(pools))
	for i, p := range pools {
		sz := sizes[i].sz
		ps := PoolSample{PoolID: p.PoolID, At: now, Assigned: sz.Assigned, Busy: sz.Running, Idle: sz.Idle,
			Quarantined: sz.Quarantined, Offline: sz.Offline, Target: sz.Target, Recommended: sz.RecommendedCapacity}
		if sizes[i].pendingErr == nil {
			v := sz.Pending
			ps.Pending = &v
		} else if client.HasTaskcluster(p.Spec.Source) && !client.HasBuildbot(p.Spec.Source) {
			// The system map shows it as the queue's last error.
			s.probes.note("queue", fmt.Errorf("pending count of pool %s: %w", p.PoolID, sizes[i].pendingErr), now)
		}
		samples = append(samples, ps)
	}
	last, err := s.lastStates(ctx, hs)
	if err != nil {
		return err
	}
	var changes []MachineState
	for _, m := range machines {
		st, detail := timelineState(m, now, s.cfg.OfflineAfter)
		if prev, ok := last[m.MachineID]; ok && prev.State == st && prev.Detail == detail {
			continue
		}
		changes = append(changes, MachineState{MachineID: m.MachineID, At: now, State: st, Detail: detail})
	}
	if err := hs.AddHistory(ctx, samples, changes); err != nil {
		return err
	}
	s.hist.mu.Lock()
	for _, c := range changes {
		s.hist.last[c.MachineID] = c
	}
	prune := now.Sub(s.hist.lastPrune) >= min(pruneEvery, s.cfg.HistoryRetention/10)
	s.hist.mu.Unlock()
	if prune {
		if err := hs.PruneHistory(ctx, now.Add(-s.cfg.HistoryRetention)); err != nil {
			return err
		}
		s.hist.mu.Lock()
		s.hist.lastPrune = now
		s.hist.mu.Unlock()
	}
	return nil
}

// lastStates returns the cached latest state per machine, reading it from
// the database when this replica's leader term changed (another replica
// may have written since).
func (s *Server) lastStates(ctx context.Context, hs HistoryStore) (map[string]MachineState, error) {
	term := s.leaderTerms.Load()
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	if s.hist.last != nil && s.hist.term == term {
		return s.hist.last, nil
	}
	last, err := hs.LatestMachineStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	s.hist.last, s.hist.term = last, term
	return last, nil
}
