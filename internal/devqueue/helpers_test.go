package devqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v3"
	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/taskcluster/httpbackoff/v3"
	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

const (
	rootID    = "root"
	rootToken = "root-secret-token-for-tests"
)

// fakeClock is the injected clock; it starts at the wall clock so that Hawk
// timestamps signed by client-go are within skew.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a devqueue behind httptest with clients and a Pulse listener.
type harness struct {
	t      testing.TB
	srv    *Server
	url    string
	clock  *fakeClock
	bus    pulse.Bus
	q      *tcqueue.Queue // root credentials
	anon   *tcqueue.Queue
	events *collector
}

// start runs a devqueue with test-friendly timings; mod may adjust the
// config before New.
func start(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	clock := &fakeClock{t: time.Now()}
	bus := pulse.NewInProcess()
	t.Cleanup(func() { _ = bus.Close() })
	cfg := Config{
		RootURL:          hs.URL,
		Clients:          map[string]string{rootID: rootToken, "other": "other-secret"},
		RootClientID:     rootID,
		Publisher:        bus,
		Now:              clock.Now,
		ClaimTimeout:     30 * time.Second,
		PollWait:         5 * time.Second,
		ResolverInterval: 10 * time.Millisecond,
		DeadlineDelay:    -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.checkOutput = true
	handler = s.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h := &harness{t: t, srv: s, url: hs.URL, clock: clock, bus: bus,
		q:    quick(tcqueue.New(&tcclient.Credentials{ClientID: rootID, AccessToken: rootToken}, hs.URL)),
		anon: quick(tcqueue.New(nil, hs.URL)),
	}
	h.events = listen(t, bus)
	return h
}

// collector records queue messages in arrival order.
type collector struct {
	mu   sync.Mutex
	msgs []pulse.Delivery
}

func listen(t testing.TB, bus pulse.Bus) *collector {
	t.Helper()
	c := &collector{}
	var bindings []pulse.Binding
	for _, ex := range []string{"task-defined", "task-pending", "task-running", "artifact-created", "task-completed", "task-failed", "task-exception", "task-group-resolved"} {
		bindings = append(bindings, pulse.Binding{Exchange: exchangePrefix + ex, RoutingKeyPattern: "#"})
	}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		// Prefetch 1 keeps deliveries in publication order.
		err := bus.Consume(ctx, pulse.ConsumeOptions{Queue: "queue/test/" + slugid.Nice(), Prefetch: 1, Ready: func() { once.Do(func() { close(ready) }) }}, bindings, func(_ context.Context, d pulse.Delivery) {
			c.mu.Lock()
			c.msgs = append(c.msgs, d)
			c.mu.Unlock()
			_ = d.Ack()
		})
		if err != nil && !errors.Is(err, pulse.ErrClosed) {
			t.Errorf("consume: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("pulse consumer not ready")
	}
	return c
}

// forTask returns the messages about taskID so far.
func (c *collector) forTask(taskID string) []pulse.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []pulse.Delivery
	for _, d := range c.msgs {
		var m struct {
			Status struct {
				TaskID string `json:"taskId"`
			} `json:"status"`
		}
		if json.Unmarshal(d.Body, &m) == nil && m.Status.TaskID == taskID {
			out = append(out, d)
		}
	}
	return out
}

// onExchange returns the messages on the named exchange so far.
func (c *collector) onExchange(name string) []pulse.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []pulse.Delivery
	for _, d := range c.msgs {
		if d.Exchange == exchangePrefix+name {
			out = append(out, d)
		}
	}
	return out
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exchangesFor waits until taskID has at least n messages and returns their
// exchange names (without the prefix).
func (h *harness) exchangesFor(taskID string, n int) []string {
	h.t.Helper()
	var got []pulse.Delivery
	waitFor(h.t, "messages", func() bool { got = h.events.forTask(taskID); return len(got) >= n })
	var out []string
	for _, d := range got {
		out = append(out, d.Exchange[len(exchangePrefix):])
	}
	return out
}

var tqCounter struct {
	sync.Mutex
	n int
}

// taskQueue returns a fresh task queue id so tests do not share queues.
func newQueueID() string {
	tqCounter.Lock()
	defer tqCounter.Unlock()
	tqCounter.n++
	return fmt.Sprintf("test-prov/wt-%d-%s", tqCounter.n, testsvc.Unique())
}

func (h *harness) def(tq string) *tcqueue.TaskDefinitionRequest {
	now := h.clock.Now()
	return &tcqueue.TaskDefinitionRequest{
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(48 * time.Hour)),
		Metadata:    tcqueue.TaskMetadata{Name: "test", Description: "a test task", Owner: "dev@example.com", Source: "https://example.com/test"},
		Payload:     json.RawMessage(`{"command": ["true"]}`),
		TaskQueueID: tq,
	}
}

// create creates a task and returns its id.
func (h *harness) create(d *tcqueue.TaskDefinitionRequest) string {
	h.t.Helper()
	id := slugid.Nice()
	if _, err := h.q.CreateTask(id, d); err != nil {
		h.t.Fatalf("createTask: %v", err)
	}
	return id
}

// createRaw PUTs a raw JSON task definition through client-go, for bodies
// its types cannot express (retries: 0).
func (h *harness) createRaw(id string, body map[string]any) (*tcqueue.TaskStatusResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	cd := tcclient.Client(*h.q)
	res, _, err := (&cd).APICall(json.RawMessage(raw), "PUT", "/task/"+url.QueryEscape(id), new(tcqueue.TaskStatusResponse), nil)
	return res.(*tcqueue.TaskStatusResponse), err
}

func (h *harness) rawDef(tq string, retries int) map[string]any {
	now := h.clock.Now()
	return map[string]any{
		"created":     tcclient.Time(now),
		"deadline":    tcclient.Time(now.Add(time.Hour)),
		"expires":     tcclient.Time(now.Add(48 * time.Hour)),
		"metadata":    map[string]string{"name": "t", "description": "d", "owner": "o@example.com", "source": "https://example.com/x"},
		"payload":     map[string]any{},
		"taskQueueId": tq,
		"retries":     retries,
	}
}

// claim claims exactly one task from tq, failing the test otherwise.
func (h *harness) claim(tq, workerID string) tcqueue.TaskClaim {
	h.t.Helper()
	q := *h.q
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q.Context = ctx
	res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: workerID})
	if err != nil {
		h.t.Fatalf("claimWork: %v", err)
	}
	if len(res.Tasks) != 1 {
		h.t.Fatalf("claimWork returned %d tasks, want 1", len(res.Tasks))
	}
	return res.Tasks[0]
}

// quick makes client-go give up on 5xx after a second instead of 15
// minutes, so that a devqueue bug fails the test fast.
func quick(q *tcqueue.Queue) *tcqueue.Queue {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxElapsedTime = time.Second
	q.HTTPBackoffClient = &httpbackoff.Client{BackOffSettings: b}
	return q
}

// runQueue is a client with a claim's per-run credentials.
func (h *harness) runQueue(creds tcqueue.TaskCredentials) *tcqueue.Queue {
	return quick(tcqueue.New(&tcclient.Credentials{ClientID: creds.ClientID, AccessToken: creds.AccessToken, Certificate: creds.Certificate}, h.url))
}

func (h *harness) status(id string) *tcqueue.TaskStatusStructure {
	h.t.Helper()
	st, err := h.anon.Status(id)
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	return &st.Status
}

// apiError is the decoded Taskcluster error of a failed call.
type apiFailure struct {
	Status  int
	Code    string
	Message string
	Method  string
}

func failure(t testing.TB, err error) apiFailure {
	t.Helper()
	var ae *tcclient.APICallException
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	var body struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		RequestInfo struct {
			Method string `json:"method"`
		} `json:"requestInfo"`
	}
	if err := json.Unmarshal([]byte(ae.CallSummary.HTTPResponseBody), &body); err != nil {
		t.Fatalf("error body %q is not Taskcluster's shape: %v", ae.CallSummary.HTTPResponseBody, err)
	}
	return apiFailure{Status: ae.CallSummary.HTTPResponse.StatusCode, Code: body.Code, Message: body.Message, Method: body.RequestInfo.Method}
}

func expectFailure(t testing.TB, err error, status int, code string) apiFailure {
	t.Helper()
	if err == nil {
		t.Fatalf("want %d %s, got success", status, code)
	}
	f := failure(t, err)
	if f.Status != status || f.Code != code {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, f.Status, f.Code, f.Message)
	}
	return f
}

func errorAs(err error, target any) bool { return errors.As(err, target) }

// stuckPublisher hangs until released or its context ends, like a broker
// that stopped answering.
type stuckPublisher chan struct{}

func (p stuckPublisher) Publish(ctx context.Context, _ pulse.Outgoing) error {
	select {
	case <-p:
		return errors.New("broker gone")
	case <-ctx.Done():
		return ctx.Err()
	}
}
