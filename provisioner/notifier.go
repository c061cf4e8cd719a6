package provisioner

import (
	"context"
	"sync"
	"time"
)

// notifier wakes long-polls waiting for a machine's directives. Within one
// process a queued directive wakes its waiters at once; with replicas on a
// shared database, runReplicaPoll wakes them for directives queued
// elsewhere.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier {
	return &notifier{waiters: map[string]map[chan struct{}]struct{}{}}
}

// wait registers interest in machineID; the channel is closed on notify.
// cancel must be called when done.
func (n *notifier) wait(machineID string) (ch chan struct{}, cancel func()) {
	ch = make(chan struct{})
	n.mu.Lock()
	set := n.waiters[machineID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		n.waiters[machineID] = set
	}
	set[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if set, ok := n.waiters[machineID]; ok {
			delete(set, ch)
			if len(set) == 0 {
				delete(n.waiters, machineID)
			}
		}
	}
}

// notify wakes every waiter for machineID.
func (n *notifier) notify(machineID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[machineID] {
		close(ch)
	}
	delete(n.waiters, machineID)
}

// waiting reports whether anyone here waits for machineID.
func (n *notifier) waiting(machineID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.waiters[machineID]) > 0
}

// runReplicaPoll wakes local long-polls for directives that other replicas
// queued: one indexed query per interval per replica, whatever the number
// of machines. A window of a few intervals covers transactions that commit
// late; a spurious wake-up only costs the waiter one empty read.
func (s *Server) runReplicaPoll(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ReplicaPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ids, err := s.store.RecentDirectiveMachines(ctx, s.now().Add(-3*s.cfg.ReplicaPoll))
		if err != nil {
			s.log.Warn("replica directive poll failed", "error", err)
			continue
		}
		for _, id := range ids {
			if s.notify.waiting(id) {
				s.notify.notify(id)
			}
		}
	}
}
