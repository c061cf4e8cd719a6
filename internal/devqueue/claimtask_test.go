package devqueue

import (
	"net/http"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestClaimTaskClaimsTheGivenRun(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))

	req := &tcqueue.TaskClaimRequest{WorkerGroup: "buildbot-bridge", WorkerID: "buildbot-bridge"}
	c, err := h.q.ClaimTask(id, "0", req)
	if err != nil {
		t.Fatalf("claimTask: %v", err)
	}
	if c.RunID != 0 || c.Status.Runs[0].State != "running" || c.WorkerID != "buildbot-bridge" || c.Task.TaskQueueID != tq {
		t.Fatalf("claim = %+v", c)
	}
	until := time.Time(c.TakenUntil)
	if want := h.clock.Now().Add(30 * time.Second).Truncate(time.Millisecond); !until.Equal(want) {
		t.Errorf("takenUntil %v: want now+ClaimTimeout = %v (milliseconds kept, as claimWork)", until, want)
	}

	// The same worker claiming again gets the same claim (a retried call).
	again, err := h.q.ClaimTask(id, "0", req)
	if err != nil || time.Time(again.TakenUntil) != until {
		t.Fatalf("repeat claimTask = %v, %v; want the same takenUntil %v", again, err, until)
	}
	// claimWork no longer sees the run.
	if n, err := h.q.PendingTasks(tq); err != nil || n.PendingTasks != 0 {
		t.Errorf("pendingTasks after claimTask = %v, %v; want 0", n, err)
	}

	// Another worker conflicts; a missing run is not found.
	_, err = h.q.ClaimTask(id, "0", &tcqueue.TaskClaimRequest{WorkerGroup: "wg", WorkerID: "other"})
	expectFailure(t, err, http.StatusConflict, "RequestConflict")
	_, err = h.q.ClaimTask(id, "1", req)
	expectFailure(t, err, http.StatusNotFound, "ResourceNotFound")

	// A resolved run conflicts.
	if _, err := h.q.ReportCompleted(id, "0"); err != nil {
		t.Fatal(err)
	}
	_, err = h.q.ClaimTask(id, "0", req)
	expectFailure(t, err, http.StatusConflict, "RequestConflict")
}

func TestClaimTaskPastDeadlineConflicts(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	d := h.def(tq)
	d.Deadline = tcclient.Time(h.clock.Now().Add(time.Minute))
	id := h.create(d)
	h.clock.Advance(2 * time.Minute)
	_, err := h.q.ClaimTask(id, "0", &tcqueue.TaskClaimRequest{WorkerGroup: "wg", WorkerID: "w"})
	expectFailure(t, err, http.StatusConflict, "RequestConflict")
}
