package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// waitLimit bounds every wait for a condition; it is a deadline for a hung
// test, never a timing assertion.
const waitLimit = 20 * time.Second

const testAdminToken = "admin-token-for-tests-0123456789"

// fakeClock is a settable clock for hysteresis, expiry and sizing tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixedDemand is synthetic demand, settable per pool.
type fixedDemand struct {
	mu sync.Mutex
	n  map[string]int64
}

func (d *fixedDemand) set(pool string, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int64{}
	}
	d.n[pool] = n
}

func (d *fixedDemand) Pending(_ context.Context, p client.Pool) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[p.PoolID], nil
}

// env is a provisioner under test behind an httptest server.
type env struct {
	t      *testing.T
	srv    *Server
	url    string
	admin  *client.Client
	demand *fixedDemand
	clock  *fakeClock
}

// newEnv starts a provisioner on the store at storeURL; mod adjusts the
// config before New.
func newEnv(t *testing.T, storeURL string, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, demand: &fixedDemand{}, clock: newFakeClock()}
	cfg := Config{
		DB:                 storeURL,
		AdminTokens:        []string{testAdminToken},
		Demand:             e.demand,
		Now:                e.clock.Now,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		CancelPollInterval: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.srv, e.url = srv, hs.URL
	e.admin = client.New(hs.URL, testAdminToken, client.WithRetries(0, 0, 0), client.WithOperator("tester"))
	return e
}

// run starts the server's loops until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.srv.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	e.t.Cleanup(cancel)
	return ctx
}

// pool stores a pool through the API.
func (e *env) pool(id string, spec client.PoolSpec) {
	e.t.Helper()
	if _, err := e.admin.PutPool(e.ctx(), id, spec); err != nil {
		e.t.Fatalf("put pool %s: %v", id, err)
	}
}

// enroll registers a machine with a fresh one-use enrollment token and
// returns its registration and a client holding its machine token.
func (e *env) enroll(facts client.Facts) (*client.RegisterResponse, *client.Client) {
	e.t.Helper()
	tok, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		e.t.Fatalf("create enrollment token: %v", err)
	}
	anon := client.New(e.url, "", client.WithRetries(0, 0, 0))
	reg, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: facts, EnrollmentToken: tok.Token})
	if err != nil {
		e.t.Fatalf("register %s: %v", facts.Hostname, err)
	}
	return reg, anon.WithToken(reg.MachineToken)
}

// raw sends a request with a raw body and token, returning status and
// decoded error (if any).
func (e *env) raw(method, path, token, body string) (int, client.Error) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var ce client.Error
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &ce)
	return resp.StatusCode, ce
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func winFacts(host string) client.Facts {
	return client.Facts{Hostname: host, OS: "windows", OSVersion: "10.0.22631", Arch: "amd64", Model: "NUC12", CPUs: 8, MemoryMB: 16384, Serial: "SN-" + host}
}

func macFacts(host string) client.Facts {
	return client.Facts{Hostname: host, OS: "darwin", OSVersion: "14.5", Arch: "arm64", Model: "Macmini9,1", CPUs: 8, MemoryMB: 16384, Serial: "SN-" + host}
}

func tcPool(queue string, minC, maxC, prio int, os ...string) client.PoolSpec {
	return client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: queue, MinCapacity: minC, MaxCapacity: maxC, Priority: prio,
		Constraints: client.Constraints{OS: os}}
}
