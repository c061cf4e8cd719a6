package devqueue

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Run resolves expired claims and deadlines every ResolverInterval until ctx
// is done, then waits (up to 5 s) for queued Pulse messages to be handed to
// the publisher. Without Run, claims never expire, deadlines are not
// enforced and expired tasks are kept; the API works either way.
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.out.flush(5 * time.Second)
			s.out.stop()
			return nil
		case <-tick.C:
			s.resolveOnce()
		}
	}
}

// resolveOnce runs one pass of the claim and deadline resolvers.
func (s *Server) resolveOnce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, t := range s.tasks {
		if t.Expires.Before(now) {
			s.forget(t)
			continue
		}
		if !t.DeadlineDone && !t.Deadline.Add(s.deadlineWait).After(now) {
			s.expireDeadline(t)
			continue
		}
		if r := t.lastRun(); r != nil && r.State == "running" && r.TakenUntil.Before(now) && !t.Deadline.Before(now) {
			s.expireClaim(t)
		}
	}
	for tok, ref := range s.blobs {
		if ref.put && ref.expires.Before(now) {
			delete(s.blobs, tok)
		}
	}
}

// forget drops an expired task with its artifacts, as the real queue's
// expiry crontask does, so a long-running devqueue does not grow without
// bound. Call it under s.mu.
func (s *Server) forget(t *task) {
	delete(s.tasks, t.ID)
	delete(s.dependents, t.ID)
	if !t.EverResolved {
		s.groupActive[t.Def.TaskGroupID]--
	}
	if s.groupActive[t.Def.TaskGroupID] <= 0 {
		delete(s.groupActive, t.Def.TaskGroupID)
	}
	for _, arts := range t.Artifacts {
		for _, a := range arts {
			if a.getToken != "" {
				delete(s.blobs, a.getToken)
			}
		}
	}
}

// expireClaim is claimresolver.js with check_task_claim: the latest run's
// claim lapsed without a reclaim. Call it under s.mu.
func (s *Server) expireClaim(t *task) {
	runID := len(t.Runs) - 1
	r := t.Runs[runID]
	r.State = "exception"
	r.ReasonResolved = "claim-expired"
	r.Resolved = s.now()
	if t.RetriesLeft > 0 {
		t.Runs = append(t.Runs, &run{State: "pending", ReasonCreated: "retry", Scheduled: s.now()})
		t.RetriesLeft--
		s.enqueuePending(t)
		s.publish("task-pending", t, publishOpts{runID: runID + 1})
		return
	}
	s.publish("task-exception", t, publishOpts{runID: runID, workerGroup: r.WorkerGroup, workerID: r.WorkerID})
	s.resolveDependents(t.ID, "exception")
}

// expireDeadline is deadlineresolver.js: cancel_task with
// deadline-exceeded. Call it under s.mu.
func (s *Server) expireDeadline(t *task) {
	t.DeadlineDone = true
	if !s.cancelRun(t, "deadline-exceeded") {
		return
	}
	s.publish("task-exception", t, publishOpts{runID: len(t.Runs) - 1})
	s.resolveDependents(t.ID, "exception")
}

// Handler serves the queue API under /api/queue/v1/ and artifact content
// under /_devqueue/.
func (s *Server) Handler() http.Handler {
	eps := s.endpoints()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, apiPrefix):
			s.serveAPI(w, r, eps)
		case strings.HasPrefix(r.URL.Path, blobPrefix):
			s.serveBlob(w, r)
		default:
			writeError(w, s.now(), "", nil, nil, &apiError{Code: "ResourceNotFound", Message: "devqueue serves only /api/queue/v1/ and " + blobPrefix + "; " + r.URL.Path + " does not exist"})
		}
	})
}
