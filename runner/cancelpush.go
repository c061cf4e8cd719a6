package runner

// The provisioner pushes cancel-task directives; the agent learns of
// cancellations through its CancelWatcher. pushCancelWatcher turns the
// directives into that interface and combines them with the agent's own
// watcher (Pulse or polling), whichever tells first:
//
//	Watch(run) ──▶ inner.Watch(run) ─┐
//	cancel(task, run) ───────────────┴──▶ run's channel closed
//
// A directive can beat the Watch call (the provisioner saw the task in a
// heartbeat before the agent started watching it), so cancelled runs are
// remembered for a while.

import (
	"context"
	"sync"
	"time"

	"github.com/labrunner/labrunner/agent"
)

// cancelMemory is how long a pushed cancellation waits for its run.
const cancelMemory = time.Hour

// runRef names one run of a task.
type runRef struct {
	taskID string
	runID  int
}

// pushCancelWatcher is a CancelWatcher fed by the provisioner's directives.
type pushCancelWatcher struct {
	mu        sync.Mutex
	watching  map[runRef][]chan struct{}
	cancelled map[runRef]time.Time
}

func newPushCancelWatcher() *pushCancelWatcher {
	return &pushCancelWatcher{watching: map[runRef][]chan struct{}{}, cancelled: map[runRef]time.Time{}}
}

// with returns the agent's watcher combined with the pushed cancellations.
func (p *pushCancelWatcher) with(inner agent.CancelWatcher) agent.CancelWatcher {
	return &combinedCancelWatcher{push: p, inner: inner}
}

// cancel tells the watchers of the run, now or when it is watched.
func (p *pushCancelWatcher) cancel(taskID string, runID int) {
	ref := runRef{taskID, runID}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for k, at := range p.cancelled {
		if now.Sub(at) > cancelMemory {
			delete(p.cancelled, k)
		}
	}
	if _, done := p.cancelled[ref]; done {
		return
	}
	p.cancelled[ref] = now
	for _, ch := range p.watching[ref] {
		close(ch)
	}
	delete(p.watching, ref)
}

// watch returns a channel closed when the run is cancelled by a push.
func (p *pushCancelWatcher) watch(ctx context.Context, ref runRef) <-chan struct{} {
	ch := make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, done := p.cancelled[ref]; done {
		close(ch)
		return ch
	}
	p.watching[ref] = append(p.watching[ref], ch)
	context.AfterFunc(ctx, func() { p.forget(ref, ch) })
	return ch
}

// forget drops a watch whose run is over.
func (p *pushCancelWatcher) forget(ref runRef, ch chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.watching[ref]
	for i, c := range ws {
		if c == ch {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.watching, ref)
	} else {
		p.watching[ref] = ws
	}
}

// combinedCancelWatcher tells a run of whichever cancellation comes first.
type combinedCancelWatcher struct {
	push  *pushCancelWatcher
	inner agent.CancelWatcher
}

// Watch merges the pushed and the inner watcher's cancellations.
func (c *combinedCancelWatcher) Watch(ctx context.Context, run agent.Run) <-chan struct{} {
	pushed := c.push.watch(ctx, runRef{run.TaskID(), run.RunID()})
	if c.inner == nil {
		return pushed
	}
	other := c.inner.Watch(ctx, run)
	out := make(chan struct{})
	go func() {
		select {
		case <-pushed:
		case <-other:
		case <-ctx.Done():
			return
		}
		close(out)
	}()
	return out
}
