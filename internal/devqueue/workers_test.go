package devqueue

import (
	"context"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func split(tq string) (string, string) {
	p, w, _ := strings.Cut(tq, "/")
	return p, w
}

func TestWorkerRecordsAndQuarantine(t *testing.T) {
	h := start(t, func(c *Config) { c.PollWait = 100 * time.Millisecond })
	tq := newQueueID()
	prov, wt := split(tq)

	// Unknown workers cannot be quarantined or read.
	until := tcclient.Time(h.clock.Now().Add(time.Hour))
	_, err := h.q.QuarantineWorker(prov, wt, "wg", "w1", &tcqueue.QuarantineWorkerRequest{QuarantineUntil: until})
	expectFailure(t, err, 404, "ResourceNotFound")
	_, err = h.q.GetWorker(prov, wt, "wg", "w1")
	expectFailure(t, err, 404, "ResourceNotFound")

	// declareWorker makes it known. client-go sends a zero Expires as year
	// 1, which declares an expired worker, as in the real queue: it is not
	// listed, but it can be quarantined.
	w, err := h.q.DeclareWorker(prov, wt, "wg", "w1", &tcqueue.WorkerRequest{})
	if err != nil {
		t.Fatalf("declareWorker: %v", err)
	}
	if w.WorkerID != "w1" || w.TaskQueueID != tq || len(w.RecentTasks) != 0 || time.Time(w.Expires).Year() != 1 {
		t.Errorf("declared worker = %+v", w)
	}
	_, err = h.q.GetWorker(prov, wt, "wg", "w1")
	expectFailure(t, err, 404, "ResourceNotFound")
	w, err = h.q.QuarantineWorker(prov, wt, "wg", "w1", &tcqueue.QuarantineWorkerRequest{QuarantineUntil: until})
	if err != nil {
		t.Fatalf("quarantineWorker: %v", err)
	}
	if !time.Time(w.QuarantineUntil).Equal(time.Time(until).Truncate(time.Millisecond)) {
		t.Errorf("quarantineUntil = %v, want %v", w.QuarantineUntil, until)
	}

	// A quarantined worker gets nothing, even with a task pending.
	id := h.create(h.def(tq))
	q := *h.q
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Context = ctx
	res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "w1"})
	if err != nil || len(res.Tasks) != 0 {
		t.Fatalf("quarantined claimWork = %+v, %v; want no tasks", res, err)
	}
	if s := h.status(id); s.State != "pending" {
		t.Fatalf("task claimed by a quarantined worker: %s", s.State)
	}
	list, err := h.q.ListWorkers(prov, wt, "", "", "true")
	if err != nil || len(list.Workers) != 1 || list.Workers[0].WorkerID != "w1" || list.Workers[0].QuarantineUntil.String() == "" {
		t.Fatalf("listWorkers quarantined = %+v, %v", list, err)
	}

	// A past date lifts the quarantine.
	if _, err := h.q.QuarantineWorker(prov, wt, "wg", "w1", &tcqueue.QuarantineWorkerRequest{QuarantineUntil: tcclient.Time(h.clock.Now().Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	c := h.claim(tq, "w1")
	if c.Status.TaskID != id {
		t.Fatalf("claimed %s", c.Status.TaskID)
	}
	w, err = h.q.GetWorker(prov, wt, "wg", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.RecentTasks) != 1 || w.RecentTasks[0].TaskID != id || w.RecentTasks[0].RunID != 0 {
		t.Errorf("recentTasks = %+v", w.RecentTasks)
	}
	if exp := time.Time(w.Expires); exp.Before(h.clock.Now().Add(23 * time.Hour)) {
		t.Errorf("worker expires %v, want about a day ahead", exp)
	}
	list, err = h.q.ListWorkers(prov, wt, "", "", "false")
	if err != nil || len(list.Workers) != 1 || list.Workers[0].LatestTask.TaskID != id {
		t.Fatalf("listWorkers unquarantined = %+v, %v", list, err)
	}
	if list, _ = h.q.ListWorkers(prov, wt, "", "", "true"); len(list.Workers) != 0 {
		t.Errorf("lifted worker still listed as quarantined")
	}
}

func TestRecentTasksKeepsTwenty(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	prov, wt := split(tq)
	var last string
	for i := 0; i < 22; i++ {
		last = h.create(h.def(tq))
		h.claim(tq, "busy")
	}
	w, err := h.q.GetWorker(prov, wt, "wg", "busy")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.RecentTasks) != 20 || w.RecentTasks[19].TaskID != last {
		t.Errorf("recentTasks has %d entries ending %+v", len(w.RecentTasks), w.RecentTasks[len(w.RecentTasks)-1])
	}
}

func TestListWorkersPaging(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	prov, wt := split(tq)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := h.q.DeclareWorker(prov, wt, "wg", id, &tcqueue.WorkerRequest{Expires: tcclient.Time(h.clock.Now().Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	token := ""
	for {
		res, err := h.q.ListWorkers(prov, wt, token, "2", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range res.Workers {
			ids = append(ids, w.WorkerID)
		}
		if token = res.ContinuationToken; token == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("listed %v", ids)
	}
	_, err := h.anon.ListWorkers(prov, wt, "", "", "")
	expectFailure(t, err, 401, "AuthenticationFailed")
}

func TestPendingTasksCount(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	prov, wt := split(tq)
	for i := 0; i < 3; i++ {
		h.create(h.def(tq))
	}
	res, err := h.q.PendingTasks(tq)
	if err != nil {
		t.Fatal(err)
	}
	if res.PendingTasks != 3 || res.ProvisionerID != prov || res.WorkerType != wt || res.TaskQueueID != tq {
		t.Errorf("pendingTasks = %+v", res)
	}
	h.claim(tq, "w")
	if res, _ = h.q.PendingTasks(tq); res.PendingTasks != 2 {
		t.Errorf("after a claim pendingTasks = %d, want 2", res.PendingTasks)
	}
	if res, _ = h.q.PendingTasks("test-prov/nothing-here"); res.PendingTasks != 0 {
		t.Errorf("empty queue pendingTasks = %d", res.PendingTasks)
	}
}

func TestTaskQueues(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	h.create(h.def(tq))
	// Creating tasks does not make a task queue known; workers do.
	_, err := h.q.GetTaskQueue(tq)
	expectFailure(t, err, 404, "ResourceNotFound")
	h.claim(tq, "w1")
	got, err := h.q.GetTaskQueue(tq)
	if err != nil {
		t.Fatalf("getTaskQueue: %v", err)
	}
	if got.TaskQueueID != tq || got.Stability != "experimental" || time.Time(got.Expires).Before(h.clock.Now().Add(23*time.Hour)) {
		t.Errorf("task queue = %+v", got)
	}
	list, err := h.q.ListTaskQueues("", "")
	if err != nil || len(list.TaskQueues) != 1 || list.TaskQueues[0].TaskQueueID != tq {
		t.Errorf("listTaskQueues = %+v, %v", list, err)
	}
}
