package runner

// The claim gate: the agent claims through it, and it opens only while
// the machine may take work (see claimable).

import (
	"context"
	"fmt"
	"strings"

	"github.com/labrunner/labrunner/agent"
)

// claimable says whether the gate is open. Caller holds r.mu.
func (r *Runner) claimable() bool {
	return !r.booting && r.firstPassDone && !r.stopping && !r.st.Draining && r.st.Quarantine == nil &&
		r.st.RebootPending == nil && r.st.RebootIssued == nil && !r.restartPending && r.assigned()
}

// gate is the agent's source seen through the runner: a claim waits for
// the checks and an open gate.
type gate struct {
	r     *Runner
	inner agent.Source
}

// Claim runs the checks due, waits for the gate to open, then claims (or
// hands over the provisioner's canary while quarantined: canary.go). The
// claim in flight is abandoned as soon as the gate closes (a drain, a
// move, a quarantine, a pending reboot or the service stopping): a drained
// or moved machine does not wait out the source's long poll, and a run
// claimed in that instant is given back by the source (agent.BBSource,
// agent.TCSource).
func (g *gate) Claim(ctx context.Context, max int) ([]agent.Run, error) {
	r := g.r
	for {
		r.mu.Lock()
		dirDue := r.checksDue
		r.mu.Unlock()
		if dirDue {
			r.runCheckDir(ctx)
		}
		r.runBuiltins(ctx, false, true)
		r.maybeReboot()
		r.mu.Lock()
		if run := r.canaryDue(); run != nil {
			// Handed over as if claimed: the gate stays closed to the queue.
			r.commit()
			r.mu.Unlock()
			return []agent.Run{run}, nil
		}
		ok, ch := r.claimable(), r.changed
		if ok {
			r.polling++
		}
		r.mu.Unlock()
		if ok {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil
		}
	}
	claimCtx, abandon := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.abandonWhenClosed(claimCtx, abandon)
	}()
	runs, err := g.inner.Claim(claimCtx, max)
	abandoned := claimCtx.Err() != nil
	abandon()
	<-watched
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polling--
	now := r.now()
	switch {
	case err == nil && !abandoned:
		r.st.LastClaimAt = now
		r.claimFailure = nil
	case err != nil && !abandoned:
		if r.claimFailure == nil {
			r.claimFailure = &ClaimFailure{Since: now}
		}
		r.claimFailure.Error, r.claimFailure.InARow = err.Error(), r.claimFailure.InARow+1
	}
	for _, run := range runs {
		r.st.LastTaskClaimedAt = now
		ct := CurrentTask{TaskID: run.TaskID(), RunID: run.RunID(), Started: now}
		ct.Kind, ct.Buildbot = runKind(run)
		if ct.Buildbot == nil {
			ct.LogURL = r.logURL(run)
		}
		r.st.CurrentTasks = append(r.st.CurrentTasks, ct)
	}
	if len(runs) > 0 {
		r.memoryBusy()
	}
	r.commit()
	return runs, err
}

// abandonWhenClosed calls abandon once the claim gate closes, or returns
// when ctx is done.
func (r *Runner) abandonWhenClosed(ctx context.Context, abandon context.CancelFunc) {
	for {
		r.mu.Lock()
		ok, ch := r.claimable(), r.changed
		r.mu.Unlock()
		if !ok {
			abandon()
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// ResumeRun lets the agent's journal recovery reach the real source.
func (g *gate) ResumeRun(e agent.JournalEntry) agent.Run {
	if rs, ok := g.inner.(interface {
		ResumeRun(agent.JournalEntry) agent.Run
	}); ok {
		return rs.ResumeRun(e)
	}
	return nil
}

// logURL is where the run's log can be read: the live log while it runs,
// the backing log after.
func (r *Runner) logURL(run agent.Run) string {
	return fmt.Sprintf("%s/api/queue/v1/task/%s/runs/%d/artifacts/public/logs/live.log", strings.TrimRight(r.agentCfg.Load().RootURL, "/"), run.TaskID(), run.RunID())
}
