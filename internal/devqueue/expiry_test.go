package devqueue

import (
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestClaimExpiryRetriesThenResolves(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := slugidFor(t, h, tq, 1)

	h.claim(tq, "w1")
	h.clock.Advance(31 * time.Second)
	waitFor(t, "claim to expire", func() bool { return len(h.status(id).Runs) == 2 })
	st := h.status(id)
	if r := st.Runs[0]; r.State != "exception" || r.ReasonResolved != "claim-expired" {
		t.Errorf("run 0 = %+v, want exception/claim-expired", r)
	}
	if r := st.Runs[1]; r.State != "pending" || r.ReasonCreated != "retry" || st.RetriesLeft != 0 {
		t.Errorf("run 1 = %+v (retriesLeft %d), want a pending retry", r, st.RetriesLeft)
	}

	// A reclaimed claim does not expire at its first takenUntil.
	c := h.claim(tq, "w2")
	h.clock.Advance(20 * time.Second)
	if _, err := h.runQueue(c.Credentials).ReclaimTask(id, "1"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(20 * time.Second) // past the first takenUntil, before the reclaimed one
	h.srv.resolveOnce()
	if s := h.status(id); s.State != "running" {
		t.Fatalf("reclaimed run expired: %s", s.State)
	}
	h.clock.Advance(15 * time.Second)
	waitFor(t, "reclaimed claim to expire", func() bool { return h.status(id).State == "exception" })
	if st := h.status(id); len(st.Runs) != 2 || st.Runs[1].ReasonResolved != "claim-expired" {
		t.Errorf("without retries: %+v", st)
	}
	got := strings.Join(h.exchangesFor(id, 6), ",")
	if want := "task-defined,task-pending,task-running,task-pending,task-running,task-exception"; got != want {
		t.Errorf("messages = %s, want %s", got, want)
	}
}

// shortDef is a task definition whose deadline is a minute away, so that
// passing it keeps client-go's Hawk timestamps within the 15 min skew.
func shortDef(h *harness, tq string) *tcqueue.TaskDefinitionRequest {
	d := h.def(tq)
	d.Deadline = tcclient.Time(h.clock.Now().Add(time.Minute))
	return d
}

func TestDeadlineExceeded(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	running := h.create(shortDef(h, tq))
	h.claim(tq, "w1")
	pending := h.create(shortDef(h, tq))
	d := shortDef(h, tq)
	d.Dependencies = []string{pending}
	unscheduled := h.create(d)

	h.clock.Advance(time.Minute + time.Second)
	for _, id := range []string{running, pending, unscheduled} {
		waitFor(t, "deadline of "+id, func() bool { return h.status(id).State == "exception" })
		st := h.status(id)
		last := st.Runs[len(st.Runs)-1]
		if last.ReasonResolved != "deadline-exceeded" {
			t.Errorf("%s resolved %s, want deadline-exceeded", id, last.ReasonResolved)
		}
	}
	if r := h.status(unscheduled).Runs[0]; r.ReasonCreated != "exception" {
		t.Errorf("unscheduled task's run created %s, want exception", r.ReasonCreated)
	}
	// Past the deadline the task is immutable.
	_, err := h.q.RerunTask(running)
	expectFailure(t, err, 409, "RequestConflict")
	_, err = h.q.CancelTask(pending)
	expectFailure(t, err, 409, "RequestConflict")
}

func TestDeadlineDelay(t *testing.T) {
	h := start(t, func(c *Config) { c.DeadlineDelay = 0 }) // zero means the real queue's 60 s
	id := h.create(shortDef(h, newQueueID()))
	h.clock.Advance(time.Minute + 30*time.Second)
	h.srv.resolveOnce()
	if s := h.status(id).State; s != "pending" {
		t.Fatalf("resolved %s within DeadlineDelay", s)
	}
	h.clock.Advance(31 * time.Second)
	waitFor(t, "deadline after the delay", func() bool { return h.status(id).State == "exception" })
}

func TestExpiredTasksAreForgotten(t *testing.T) {
	h := start(t, nil)
	d := shortDef(h, newQueueID())
	d.Expires = tcclient.Time(h.clock.Now().Add(2 * time.Minute))
	id := h.create(d)
	h.clock.Advance(2*time.Minute + time.Second)
	waitFor(t, "task to expire", func() bool {
		_, err := h.anon.Status(id)
		return err != nil && failure(t, err).Status == 404
	})
}
