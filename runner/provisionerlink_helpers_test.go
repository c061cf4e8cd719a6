package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

const linkAdminToken = "link-test-admin-token-0123456789abcdef"

// linkWait bounds each wait for a condition; it catches a hung test and is
// never a timing assertion.
const linkWait = 30 * time.Second

// linkEnv is a real provisioner (SQLite in a temp dir) behind httptest.
type linkEnv struct {
	t     *testing.T
	srv   *provisioner.Server
	url   string
	admin *client.Client
	dir   string
}

func newLinkEnv(t *testing.T, mod func(*provisioner.Config)) *linkEnv {
	t.Helper()
	dir := testTempDir(t)
	cfg := provisioner.Config{
		DB:                 filepath.Join(dir, "prov.db"),
		AdminTokens:        []string{linkAdminToken},
		CancelPollInterval: -1,
		Demand:             noDemand{},
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := provisioner.New(cfg)
	if err != nil {
		t.Fatalf("provisioner.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	return &linkEnv{t: t, srv: srv, url: hs.URL, dir: dir,
		admin: client.New(hs.URL, linkAdminToken, client.WithRetries(0, 0, 0), client.WithOperator("tester"))}
}

// noDemand reports no pending tasks, so that only the tests move machines.
type noDemand struct{}

func (noDemand) Pending(context.Context, client.Pool) (int64, error) { return 0, nil }

// run starts the provisioner's assigner and renewal loops.
func (e *linkEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.srv.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	linkEventually(e.t, "the provisioner to lead", e.srv.Leading)
}

func (e *linkEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), linkWait)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *linkEnv) pool(id, queue string) {
	e.t.Helper()
	spec := client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: queue, MinCapacity: 1, MaxCapacity: 3}
	if _, err := e.admin.PutPool(e.ctx(), id, spec); err != nil {
		e.t.Fatalf("put pool %s: %v", id, err)
	}
}

func (e *linkEnv) enrollToken(uses int) string {
	e.t.Helper()
	tok, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenEnroll, Uses: uses})
	if err != nil {
		e.t.Fatalf("create enrollment token: %v", err)
	}
	return tok.Token
}

func (e *linkEnv) machine(id string) *client.MachineDetail {
	e.t.Helper()
	m, err := e.admin.GetMachine(e.ctx(), id)
	if err != nil {
		e.t.Fatalf("get machine %s: %v", id, err)
	}
	return m
}

// linkRecorder is the runner's side of a link under test: the heartbeat
// snapshot it reports and what it was told.
type linkRecorder struct {
	mu          sync.Mutex
	hb          client.HeartbeatRequest
	handled     []client.Directive
	attempts    map[int64]int
	assignments []client.Assignment
	failFirst   string // a directive kind whose first delivery fails
	onDirective func(client.Directive)
	snapshots   atomic.Int64
}

func (r *linkRecorder) snapshot() client.HeartbeatRequest {
	r.snapshots.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hb
}

func (r *linkRecorder) setState(hb client.HeartbeatRequest) {
	r.mu.Lock()
	r.hb = hb
	r.mu.Unlock()
}

func (r *linkRecorder) handle(_ context.Context, d client.Directive) error {
	r.mu.Lock()
	r.attempts[d.ID]++
	if d.Kind == r.failFirst && r.attempts[d.ID] == 1 {
		r.mu.Unlock()
		return errors.New("not now")
	}
	r.handled = append(r.handled, d)
	hook := r.onDirective
	r.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	return nil
}

func (r *linkRecorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, d := range r.handled {
		ks = append(ks, d.Kind)
	}
	return ks
}

func (r *linkRecorder) find(kind string) *client.Directive {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.handled {
		if r.handled[i].Kind == kind {
			d := r.handled[i]
			return &d
		}
	}
	return nil
}

func (r *linkRecorder) lastAssignment() *client.Assignment {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.assignments) == 0 {
		return nil
	}
	a := r.assignments[len(r.assignments)-1]
	return &a
}

func linkFacts(host string) client.Facts {
	return client.Facts{Hostname: host, OS: "darwin", OSVersion: "14.5", Arch: "arm64", Model: "Macmini9,1", CPUs: 8, MemoryMB: 16384, Serial: "SN-" + host}
}

// newLink makes a link to e with fast intervals; mod adjusts its config.
func (e *linkEnv) newLink(statePath string, mod func(*LinkConfig)) (*ProvisionerLink, *linkRecorder) {
	e.t.Helper()
	rec := &linkRecorder{attempts: map[int64]int{}, hb: client.HeartbeatRequest{State: client.StateIdle}}
	cfg := LinkConfig{
		URL:               e.url,
		StatePath:         statePath,
		Facts:             linkFacts("link-mini-1"),
		HeartbeatInterval: 20 * time.Millisecond,
		PollWait:          5 * time.Second,
		RetryMin:          10 * time.Millisecond,
		RetryMax:          100 * time.Millisecond,
		Snapshot:          rec.snapshot,
		Handle:            rec.handle,
		OnAssignment: func(a client.Assignment) {
			rec.mu.Lock()
			rec.assignments = append(rec.assignments, a)
			rec.mu.Unlock()
		},
		ClientOptions: []client.Option{client.WithRetries(1, 10*time.Millisecond, 50*time.Millisecond)},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	l, err := NewProvisionerLink(cfg)
	if err != nil {
		e.t.Fatalf("NewProvisionerLink: %v", err)
	}
	return l, rec
}

// linkRun is a running link's Run: done closes when it returns err.
type linkRun struct {
	done chan struct{}
	err  error
	stop context.CancelFunc
}

// start runs l until the test ends, once it has a machine token.
func (e *linkEnv) start(l *ProvisionerLink) *linkRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &linkRun{done: make(chan struct{}), stop: cancel}
	go func() { r.err = l.Run(ctx); close(r.done) }()
	e.t.Cleanup(func() { cancel(); <-r.done })
	select {
	case <-l.Ready():
	case <-r.done:
		e.t.Fatalf("link stopped before registering: %v", r.err)
	case <-time.After(linkWait):
		e.t.Fatal("link never registered")
	}
	return r
}

// linkEventually polls cond until it holds or linkWait passes.
func linkEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(linkWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// moreHeartbeats waits until the link has sent n more heartbeats, each
// with its answer's directives delivered.
func moreHeartbeats(t *testing.T, rec *linkRecorder, n int64) {
	t.Helper()
	target := rec.snapshots.Load() + n + 1
	linkEventually(t, "more heartbeats", func() bool { return rec.snapshots.Load() >= target })
}

const linkTaskQueue = "labrunner-link/hello"

// TestLinkRegistersHeartbeatsAndClaimsWork: a link registers with an
// enrollment token, its credentials claim work on the dev queue, its
// heartbeats reach the registry, and a canceled task reaches Handle.
