package devqueue

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestClaimWorkReturnsTaskClaim(t *testing.T) {
	h := start(t, func(c *Config) { c.PollWait = 50 * time.Millisecond })
	tq := newQueueID()
	d := h.def(tq)
	d.Scopes = []string{"secrets:get:project/x"}
	id := h.create(d)
	before := h.clock.Now()
	c := h.claim(tq, "w1")

	if c.Status.TaskID != id || c.RunID != 0 || c.WorkerGroup != "wg" || c.WorkerID != "w1" {
		t.Fatalf("claim = %+v", c)
	}
	if c.Status.State != "running" || c.Status.Runs[0].State != "running" || c.Status.Runs[0].WorkerID != "w1" {
		t.Errorf("claimed status = %+v", c.Status)
	}
	if c.Task.Metadata.Name != "test" || c.Task.TaskQueueID != tq {
		t.Errorf("claim carries task %+v", c.Task)
	}
	until := time.Time(c.TakenUntil)
	if want := before.Add(30 * time.Second); until.Before(want.Add(-time.Millisecond)) || until.After(want.Add(time.Second)) {
		t.Errorf("takenUntil = %v, want now+ClaimTimeout ≈ %v", until, want)
	}
	wantID := "task-client/" + id + "/0/on/wg/w1/until/" + strconv.FormatFloat(float64(until.UnixMilli())/1000, 'f', -1, 64)
	if c.Credentials.ClientID != wantID {
		t.Errorf("credentials clientId = %q, want %q", c.Credentials.ClientID, wantID)
	}
	creds := tcclient.Credentials{ClientID: c.Credentials.ClientID, AccessToken: c.Credentials.AccessToken, Certificate: c.Credentials.Certificate}
	cert, err := creds.Cert()
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	wantScopes := []string{"queue:reclaim-task:" + id + "/0", "queue:resolve-task:" + id + "/0", "queue:create-artifact:" + id + "/0", "secrets:get:project/x"}
	if strings.Join(cert.Scopes, ",") != strings.Join(wantScopes, ",") || cert.Issuer != rootID || cert.Expiry != until.UnixMilli() {
		t.Errorf("certificate = %+v, want scopes %v, issuer %s, expiry at takenUntil", cert, wantScopes, rootID)
	}

	// The queue is now empty: a second claim waits and returns nothing.
	q := *h.q
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Context = ctx
	res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "w2"})
	if err != nil || len(res.Tasks) != 0 {
		t.Fatalf("second claim = %v, %v; want no tasks", res, err)
	}
}

func TestClaimWorkOrderAndBatch(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	var ids []string
	for _, p := range []string{"low", "highest", "low", "normal", "very-high"} {
		d := h.def(tq)
		d.Priority = p
		ids = append(ids, h.create(d))
	}
	q := *h.q
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Context = ctx
	res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 4, WorkerGroup: "wg", WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Tasks {
		got = append(got, c.Status.TaskID)
	}
	// highest, very-high, then the two lows in creation order.
	want := []string{ids[1], ids[4], ids[0], ids[2]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("claim order = %v, want %v", got, want)
	}
	if n, err := h.q.PendingTasks(tq); err != nil || n.PendingTasks != 1 {
		t.Errorf("pendingTasks = %+v, %v; want 1 (the normal=lowest task)", n, err)
	}
}

func TestLongPollWakesOnCreate(t *testing.T) {
	h := start(t, func(c *Config) { c.PollWait = time.Minute })
	tq := newQueueID()
	type result struct {
		res *tcqueue.ClaimWorkResponse
		err error
	}
	done := make(chan result, 1)
	q := *h.q
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q.Context = ctx
	go func() {
		res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "poller"})
		done <- result{res, err}
	}()
	// The poller registers as a worker when it arrives.
	waitFor(t, "poller to arrive", func() bool {
		_, err := h.q.GetWorker("test-prov", strings.TrimPrefix(tq, "test-prov/"), "wg", "poller")
		return err == nil
	})
	id := h.create(h.def(tq))
	r := <-done
	if r.err != nil {
		t.Fatalf("claimWork: %v", r.err)
	}
	if len(r.res.Tasks) != 1 || r.res.Tasks[0].Status.TaskID != id {
		t.Fatalf("long poll returned %+v, want task %s", r.res, id)
	}
}

func TestClaimWorkAbortedClaimsNothing(t *testing.T) {
	h := start(t, func(c *Config) { c.PollWait = time.Minute })
	tq := newQueueID()
	q := *h.q
	ctx, cancel := context.WithCancel(context.Background())
	q.Context = ctx
	errc := make(chan error, 1)
	go func() {
		_, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "gone"})
		errc <- err
	}()
	waitFor(t, "poller to arrive", func() bool {
		_, err := h.q.GetWorker("test-prov", strings.TrimPrefix(tq, "test-prov/"), "wg", "gone")
		return err == nil
	})
	waitFor(t, "poller to wait", func() bool { return h.srv.WaitingClaims() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) && (err == nil || !strings.Contains(err.Error(), "context canceled")) {
		t.Fatalf("claimWork after cancel: %v", err)
	}
	// Once the server has seen the connection close, a new task must stay
	// for a live worker.
	waitFor(t, "server to drop the poller", func() bool { return h.srv.WaitingClaims() == 0 })
	id := h.create(h.def(tq))
	c := h.claim(tq, "other")
	if c.Status.TaskID != id || c.WorkerID != "other" {
		t.Fatalf("task went to %s, want the live worker", c.WorkerID)
	}
}

func TestConcurrentClaimsNeverShareATask(t *testing.T) {
	h := start(t, func(c *Config) { c.PollWait = 200 * time.Millisecond })
	tq := newQueueID()
	const n = 40
	for i := 0; i < n; i++ {
		h.create(h.def(tq))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			q := *h.q
			for {
				res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 3, WorkerGroup: "wg", WorkerID: "w" + strconv.Itoa(w)})
				if err != nil {
					t.Error(err)
					return
				}
				if len(res.Tasks) == 0 {
					return
				}
				mu.Lock()
				for _, c := range res.Tasks {
					seen[c.Status.TaskID]++
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct tasks, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("task %s claimed %d times", id, k)
		}
	}
}

func TestPerRunCredentialsAndReclaim(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)

	h.clock.Advance(10 * time.Second)
	rc, err := rq.ReclaimTask(id, "0")
	if err != nil {
		t.Fatalf("reclaim with per-run credentials: %v", err)
	}
	if !time.Time(rc.TakenUntil).After(time.Time(c.TakenUntil)) {
		t.Errorf("reclaim takenUntil %v not after claim's %v", rc.TakenUntil, c.TakenUntil)
	}
	if rc.Credentials.ClientID == c.Credentials.ClientID || rc.Credentials.AccessToken == c.Credentials.AccessToken {
		t.Errorf("reclaim did not rotate credentials")
	}
	if rc.Status.Runs[0].TakenUntil != rc.TakenUntil {
		t.Errorf("status takenUntil %v != reply takenUntil %v", rc.Status.Runs[0].TakenUntil, rc.TakenUntil)
	}
	// The new credentials work for createArtifact and resolution.
	rq2 := h.runQueue(rc.Credentials)
	if _, err := rq2.CreateArtifact(id, "0", "public/x", refArtifact(h, "https://example.com/x")); err != nil {
		t.Fatalf("createArtifact with rotated credentials: %v", err)
	}
	st, err := rq2.ReportCompleted(id, "0")
	if err != nil {
		t.Fatalf("reportCompleted with rotated credentials: %v", err)
	}
	if st.Status.State != "completed" || st.Status.Runs[0].ReasonResolved != "completed" {
		t.Errorf("status after completed = %+v", st.Status)
	}
	// Repeating is idempotent; a different resolution conflicts.
	if _, err := rq2.ReportCompleted(id, "0"); err != nil {
		t.Errorf("repeated reportCompleted: %v", err)
	}
	_, err = rq2.ReportFailed(id, "0")
	expectFailure(t, err, 409, "RequestConflict")
	_, err = rq2.ReclaimTask(id, "0")
	expectFailure(t, err, 409, "RequestConflict")
	_, err = rq2.ReclaimTask(id, "1")
	expectFailure(t, err, 404, "ResourceNotFound")
}

func TestExpiredRunCredentialsAre401(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)
	// Taskcluster allows 5 minutes of clock skew on certificate expiry.
	h.srv.mu.Lock()
	h.clock.Advance(30*time.Second + 5*time.Minute + time.Second)
	// Keep the claim alive so the 401 can only come from the credentials.
	h.srv.tasks[id].Runs[0].TakenUntil = h.clock.Now().Add(time.Hour)
	h.srv.mu.Unlock()
	_, err := rq.ReportCompleted(id, "0")
	f := expectFailure(t, err, 401, "AuthenticationFailed")
	if !strings.Contains(f.Message, "expiry") {
		t.Errorf("401 is not about expiry: %s", f.Message)
	}
}

func TestReportFailedAndException(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	st, err := h.runQueue(c.Credentials).ReportFailed(id, "0")
	if err != nil || st.Status.State != "failed" {
		t.Fatalf("reportFailed = %+v, %v", st, err)
	}

	id2 := h.create(h.def(tq))
	c = h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)
	st, err = rq.ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "malformed-payload"})
	if err != nil || st.Status.State != "exception" || len(st.Status.Runs) != 1 || st.Status.Runs[0].ReasonResolved != "malformed-payload" {
		t.Fatalf("reportException = %+v, %v", st, err)
	}
	if _, err := rq.ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "malformed-payload"}); err != nil {
		t.Errorf("repeated reportException: %v", err)
	}
	_, err = rq.ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "internal-error"})
	expectFailure(t, err, 409, "RequestConflict")
	_, err = rq.ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "superseded"})
	f := expectFailure(t, err, 400, "InputValidationError")
	if !strings.Contains(f.Message, "/reason") {
		t.Errorf("400 does not name reason: %s", f.Message)
	}
}

func TestRetriesOnWorkerShutdownAndIntermittentTask(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	id := slugidFor(t, h, tq, 1)
	c := h.claim(tq, "w1")
	st, err := h.runQueue(c.Credentials).ReportException(id, "0", &tcqueue.TaskExceptionRequest{Reason: "worker-shutdown"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Status.Runs) != 2 || st.Status.Runs[1].ReasonCreated != "retry" || st.Status.Runs[1].State != "pending" || st.Status.RetriesLeft != 0 {
		t.Fatalf("after worker-shutdown: %+v", st.Status)
	}
	c = h.claim(tq, "w2")
	if c.RunID != 1 {
		t.Fatalf("retry claim runId = %d", c.RunID)
	}
	st, err = h.runQueue(c.Credentials).ReportException(id, "1", &tcqueue.TaskExceptionRequest{Reason: "intermittent-task"})
	if err != nil {
		t.Fatal(err)
	}
	// No retries left: the task resolves exception.
	if len(st.Status.Runs) != 2 || st.Status.State != "exception" {
		t.Fatalf("after intermittent-task without retries: %+v", st.Status)
	}
	got := h.exchangesFor(id, 6)
	want := "task-defined,task-pending,task-running,task-pending,task-running,task-exception"
	if strings.Join(got, ",") != want {
		t.Errorf("messages = %v, want %s", got, want)
	}

	// intermittent-task with retries → task-retry.
	id2 := slugidFor(t, h, tq, 2)
	c = h.claim(tq, "w1")
	st, err = h.runQueue(c.Credentials).ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "intermittent-task"})
	if err != nil || st.Status.Runs[1].ReasonCreated != "task-retry" || st.Status.RetriesLeft != 1 {
		t.Fatalf("intermittent-task with retries: %+v, %v", st, err)
	}
}

// slugidFor creates a task with the given retries through raw JSON.
func slugidFor(t *testing.T, h *harness, tq string, retries int) string {
	t.Helper()
	id := newSlug()
	if _, err := h.createRaw(id, h.rawDef(tq, retries)); err != nil {
		t.Fatalf("createTask: %v", err)
	}
	return id
}

func newSlug() string { return slugid.Nice() }

func refArtifact(h *harness, url string) *tcqueue.PostArtifactRequest {
	return postArtifact(h.t, tcqueue.RedirectArtifactRequest{
		StorageType: "reference",
		URL:         url,
		ContentType: "text/plain",
		Expires:     tcclient.Time(h.clock.Now().Add(24 * time.Hour)),
	})
}

func postArtifact(t testing.TB, v any) *tcqueue.PostArtifactRequest {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req := tcqueue.PostArtifactRequest(raw)
	return &req
}
