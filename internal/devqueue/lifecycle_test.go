package devqueue

import (
	"strings"
	"testing"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestCancelRunningThenReclaimIs409(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	st, err := h.q.CancelTask(id)
	if err != nil {
		t.Fatalf("cancelTask: %v", err)
	}
	r := st.Status.Runs[0]
	if st.Status.State != "exception" || r.ReasonResolved != "canceled" || r.WorkerID != "w1" {
		t.Fatalf("after cancel: %+v", st.Status)
	}
	rq := h.runQueue(c.Credentials)
	_, err = rq.ReclaimTask(id, "0")
	f := expectFailure(t, err, 409, "RequestConflict")
	if !strings.Contains(f.Message, "resolved or not running") {
		t.Errorf("message: %s", f.Message)
	}
	_, err = rq.ReportCompleted(id, "0")
	expectFailure(t, err, 409, "RequestConflict")
	// Artifacts may still be uploaded shortly after an exception.
	if _, err := rq.CreateArtifact(id, "0", "public/logs/live.log", refArtifact(h, "https://example.com/log")); err != nil {
		t.Errorf("createArtifact after cancel: %v", err)
	}
	// Cancel is idempotent.
	if _, err := h.q.CancelTask(id); err != nil {
		t.Errorf("repeated cancel: %v", err)
	}
}

func TestCancelPendingAndUnscheduled(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	pending := h.create(h.def(tq))
	st, err := h.q.CancelTask(pending)
	if err != nil || st.Status.State != "exception" || st.Status.Runs[0].ReasonCreated != "scheduled" {
		t.Fatalf("cancel pending = %+v, %v", st, err)
	}
	// A canceled pending task can no longer be claimed.
	if n, _ := h.q.PendingTasks(tq); n.PendingTasks != 0 {
		t.Errorf("pendingTasks after cancel = %d", n.PendingTasks)
	}

	d := h.def(tq)
	d.Dependencies = []string{pending}
	// pending resolved exception → an all-completed dependent stays unscheduled.
	blocked := h.create(d)
	if s := h.status(blocked); s.State != "unscheduled" {
		t.Fatalf("dependent of failed task = %s, want unscheduled", s.State)
	}
	st, err = h.q.CancelTask(blocked)
	if err != nil {
		t.Fatal(err)
	}
	r := st.Status.Runs
	if len(r) != 1 || r[0].State != "exception" || r[0].ReasonCreated != "exception" || r[0].ReasonResolved != "canceled" {
		t.Errorf("cancel unscheduled = %+v", st.Status)
	}
}

func TestRerunAndScheduleTask(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	if _, err := h.runQueue(c.Credentials).ReportFailed(id, "0"); err != nil {
		t.Fatal(err)
	}
	st, err := h.q.RerunTask(id)
	if err != nil {
		t.Fatalf("rerunTask: %v", err)
	}
	if len(st.Status.Runs) != 2 || st.Status.Runs[1].ReasonCreated != "rerun" || st.Status.State != "pending" {
		t.Fatalf("after rerun: %+v", st.Status)
	}
	// Idempotent while pending: no third run.
	st, err = h.q.RerunTask(id)
	if err != nil || len(st.Status.Runs) != 2 {
		t.Fatalf("second rerun = %+v, %v", st, err)
	}
	if c := h.claim(tq, "w2"); c.RunID != 1 {
		t.Errorf("rerun claimed as run %d", c.RunID)
	}

	// scheduleTask on a task that depends on itself.
	self := newSlug()
	d := h.def(tq)
	d.Dependencies = []string{self}
	if _, err := h.q.CreateTask(self, d); err != nil {
		t.Fatalf("createTask depending on itself: %v", err)
	}
	if s := h.status(self); s.State != "unscheduled" {
		t.Fatalf("self-dependent task = %s, want unscheduled", s.State)
	}
	st, err = h.q.ScheduleTask(self)
	if err != nil || st.Status.State != "pending" || st.Status.Runs[0].ReasonCreated != "scheduled" {
		t.Fatalf("scheduleTask = %+v, %v", st, err)
	}
	// Idempotent.
	if st, err = h.q.ScheduleTask(self); err != nil || len(st.Status.Runs) != 1 {
		t.Fatalf("repeated scheduleTask = %+v, %v", st, err)
	}
}

func TestDependencies(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	a := h.create(h.def(tq))
	b := h.create(h.def(tq))

	dc := h.def(tq)
	dc.Dependencies = []string{a, b}
	allCompleted := h.create(dc)
	dr := h.def(tq)
	dr.Dependencies = []string{a, b}
	dr.Requires = "all-resolved"
	allResolved := h.create(dr)

	for _, id := range []string{allCompleted, allResolved} {
		if s := h.status(id); s.State != "unscheduled" {
			t.Fatalf("dependent %s = %s before its dependencies resolved", id, s.State)
		}
	}
	ca := h.claim(tq, "w1")
	cb := h.claim(tq, "w2")
	if _, err := h.runQueue(ca.Credentials).ReportCompleted(a, "0"); err != nil {
		t.Fatal(err)
	}
	if s := h.status(allCompleted); s.State != "unscheduled" {
		t.Errorf("all-completed dependent scheduled with one dependency left: %s", s.State)
	}
	if _, err := h.runQueue(cb.Credentials).ReportFailed(b, "0"); err != nil {
		t.Fatal(err)
	}
	if s := h.status(allResolved); s.State != "pending" {
		t.Errorf("all-resolved dependent = %s after both resolved, want pending", s.State)
	}
	if s := h.status(allCompleted); s.State != "unscheduled" {
		t.Errorf("all-completed dependent = %s after a dependency failed, want unscheduled", s.State)
	}
	// A rerun of the failed dependency that completes unblocks it.
	if _, err := h.q.RerunTask(b); err != nil {
		t.Fatal(err)
	}
	var rerun tcqueue.TaskClaim
	for {
		c := h.claim(tq, "w3")
		if c.Status.TaskID == b {
			rerun = c
			break
		}
	}
	if _, err := h.runQueue(rerun.Credentials).ReportCompleted(b, "1"); err != nil {
		t.Fatal(err)
	}
	if s := h.status(allCompleted); s.State != "pending" {
		t.Errorf("all-completed dependent = %s after all completed, want pending", s.State)
	}

	// A dependency already completed when the dependent is created.
	dd := h.def(tq)
	dd.Dependencies = []string{a}
	if s := h.status(h.create(dd)); s.State != "pending" {
		t.Errorf("dependent of a completed task = %s, want pending", s.State)
	}
}

func TestRerunStopsAtFiftyRuns(t *testing.T) {
	h := start(t, nil)
	id := h.create(h.def(newQueueID()))
	for runs := 1; runs < maxRuns; runs++ {
		if _, err := h.q.CancelTask(id); err != nil {
			t.Fatal(err)
		}
		st, err := h.q.RerunTask(id)
		if err != nil {
			t.Fatalf("rerun to run %d: %v", runs, err)
		}
		if len(st.Status.Runs) != runs+1 || st.Status.RetriesLeft != int64(min(5, maxRuns-runs-1)) {
			t.Fatalf("after rerun %d: %d runs, retriesLeft %d", runs, len(st.Status.Runs), st.Status.RetriesLeft)
		}
	}
	if _, err := h.q.CancelTask(id); err != nil {
		t.Fatal(err)
	}
	_, err := h.q.RerunTask(id)
	f := expectFailure(t, err, 409, "RequestConflict")
	if !strings.Contains(f.Message, "Maximum number of runs") {
		t.Errorf("message: %s", f.Message)
	}
}
