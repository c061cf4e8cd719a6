package runner

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/internal/devstack"
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
func TestLinkRegistersHeartbeatsAndClaimsWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*linkWait)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e := newLinkEnv(t, func(c *provisioner.Config) {
		c.RootURL = stack.RootURL
		c.DefaultCredentials = &stack.Credentials
		c.CancelPollInterval = 50 * time.Millisecond
		c.AssignInterval = 50 * time.Millisecond
	})
	e.run()
	e.pool("hello", linkTaskQueue)
	statePath := filepath.Join(e.dir, "link.json")
	l, rec := e.newLink(statePath, func(c *LinkConfig) { c.EnrollmentToken = e.enrollToken(1) })
	e.start(l)

	as, ok := l.Assignment()
	if !ok || as.PoolID != "hello" || as.TaskQueueID != linkTaskQueue || as.RootURL != stack.RootURL {
		t.Fatalf("assignment = %+v, %v", as, ok)
	}
	if a := rec.lastAssignment(); a == nil || a.PoolID != "hello" {
		t.Fatalf("OnAssignment got %+v, want the registration's assignment", a)
	}
	id := l.MachineID()
	if id != "link-mini-1" || as.WorkerID != id {
		t.Fatalf("machine id %q, worker id %q", id, as.WorkerID)
	}
	saved, err := os.ReadFile(statePath)
	if err != nil || !strings.Contains(string(saved), `"machineId": "link-mini-1"`) {
		t.Fatalf("state file: %s, %v", saved, err)
	}

	taskID := slugid.Nice()
	root := tcqueue.New(&stack.Credentials, stack.RootURL)
	root.Context = ctx
	now := time.Now()
	if _, err := root.CreateTask(taskID, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: linkTaskQueue, Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "link test", Owner: "test@labrunner.invalid", Source: "https://github.com/labrunner/labrunner"},
		Payload:  json.RawMessage(`{"command":[["true"]],"maxRunTime":60}`),
	}); err != nil {
		t.Fatal(err)
	}
	creds, ok := l.Credentials()
	if !ok {
		t.Fatal("no credentials after registration")
	}
	q := tcqueue.New(&creds, stack.RootURL)
	q.Context = ctx
	claims, err := q.ClaimWork(linkTaskQueue, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: as.WorkerGroup, WorkerID: id})
	if err != nil || len(claims.Tasks) != 1 || claims.Tasks[0].Status.TaskID != taskID {
		t.Fatalf("claimWork with the link's credentials = %+v, %v", claims, err)
	}

	rec.setState(client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: taskID}, Counters: map[string]int64{"tasksRun": 7}})
	linkEventually(t, "the busy heartbeat in the registry", func() bool {
		m := e.machine(id)
		return m.LastHeartbeat != nil && m.State == client.StateBusy && m.CurrentTask != nil && m.CurrentTask.TaskID == taskID && m.Counters["tasksRun"] == 7
	})

	if _, err := root.CancelTask(taskID); err != nil {
		t.Fatal(err)
	}
	linkEventually(t, "the cancel-task directive", func() bool { return rec.find(client.DirectiveCancelTask) != nil })
	if d := rec.find(client.DirectiveCancelTask); d.Task == nil || d.Task.TaskID != taskID {
		t.Fatalf("cancel directive %+v", d)
	}
	moreHeartbeats(t, rec, 3)
	if n := slices.Index(rec.kinds(), client.DirectiveCancelTask); n < 0 || slices.Contains(rec.kinds()[n+1:], client.DirectiveCancelTask) {
		t.Fatalf("cancel-task handled more than once: %v", rec.kinds())
	}

	st := l.Status()
	if !st.Registered || !st.Connected || st.MachineID != id || st.PoolID != "hello" || st.LastContact == nil || st.CredentialsExpire == nil || st.Identity != "enrollment-token" {
		t.Fatalf("status = %+v", st)
	}
	if s := st.Summary(time.Now()); !strings.HasPrefix(s, "connected to "+e.url+" as link-mini-1, pool hello") {
		t.Fatalf("summary %q", s)
	}
}

// TestLinkDeliversEachDirectiveOnce: directives arrive in heartbeat
// answers and from the long-poll, yet Handle sees each once, in order; a
// failed Handle gets the directive again; a restarted link remembers the
// last one it handled.
func TestLinkDeliversEachDirectiveOnce(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.pool("hello", linkTaskQueue)
	statePath := filepath.Join(e.dir, "link.json")
	l, rec := e.newLink(statePath, func(c *LinkConfig) { c.EnrollmentToken = e.enrollToken(1) })
	rec.failFirst = client.DirectiveReboot
	e.start(l)
	id := l.MachineID()
	ctx := e.ctx()

	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	steps := []struct {
		kind string
		do   func() error
	}{
		{client.DirectiveDrain, func() error { _, err := e.admin.Drain(ctx, id, "maintenance"); return err }},
		{client.DirectiveQuarantine, func() error { _, err := e.admin.Quarantine(ctx, id, "flaky USB", until); return err }},
		{client.DirectiveReboot, func() error { _, err := e.admin.Reboot(ctx, id, "kernel update"); return err }},
		{client.DirectiveUnquarantine, func() error { _, err := e.admin.Unquarantine(ctx, id, "fixed"); return err }},
	}
	var want []string
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.kind, err)
		}
		want = append(want, s.kind)
		linkEventually(t, s.kind+" to be handled", func() bool { return len(rec.kinds()) == len(want) })
		moreHeartbeats(t, rec, 3)
	}
	if got := rec.kinds(); !slices.Equal(got, want) {
		t.Fatalf("handled %v, want each once: %v", got, want)
	}
	reboot := rec.find(client.DirectiveReboot)
	rec.mu.Lock()
	rebootTries := rec.attempts[reboot.ID]
	rec.mu.Unlock()
	if rebootTries != 2 {
		t.Fatalf("reboot delivered %d times, want 2 (a failed Handle, then a success)", rebootTries)
	}
	if q := rec.find(client.DirectiveQuarantine); q.Until == nil || !q.Until.Equal(until) || q.Reason != "flaky USB" {
		t.Fatalf("quarantine directive %+v", q)
	}

	// The same directives again, as a late heartbeat answer would bring.
	rec.mu.Lock()
	again := slices.Clone(rec.handled)
	rec.mu.Unlock()
	l.deliver(ctx, again)
	if got := rec.kinds(); len(got) != len(want) {
		t.Fatalf("redelivered directives handled again: %v", got)
	}
	last := again[len(again)-1].ID
	if st := l.Status(); st.LastDirective != last {
		t.Fatalf("last directive %d, want %d", st.LastDirective, last)
	}

	// A restarted runner keeps its machine and its last handled directive.
	l2, rec2 := e.newLink(statePath, func(c *LinkConfig) { c.EnrollmentToken = "used-up-token-does-not-matter" })
	if l2.MachineID() != id || l2.Status().LastDirective != last {
		t.Fatalf("restarted link: machine %q last %d", l2.MachineID(), l2.Status().LastDirective)
	}
	l2.deliver(ctx, again)
	if len(rec2.kinds()) != 0 {
		t.Fatalf("restarted link handled old directives: %v", rec2.kinds())
	}
}

// TestLinkReassignAfterDrain: an operator's assign drains the machine;
// once the runner reports drained, the reassign brings the new pool and its
// credentials.
func TestLinkReassignAfterDrain(t *testing.T) {
	perm := tcclient.Credentials{ClientID: "project/labrunner/provisioner", AccessToken: "permanent-access-token-0123456789abcdef0123"}
	e := newLinkEnv(t, func(c *provisioner.Config) { c.DefaultCredentials = &perm; c.RootURL = "https://tc.example.com" })
	e.pool("hello", linkTaskQueue)
	e.pool("other", "labrunner-link/other")
	l, rec := e.newLink(filepath.Join(e.dir, "link.json"), func(c *LinkConfig) { c.EnrollmentToken = e.enrollToken(1) })
	rec.onDirective = func(d client.Directive) {
		switch d.Kind {
		case client.DirectiveDrain:
			rec.setState(client.HeartbeatRequest{State: client.StateDrained})
			l.HeartbeatNow()
		case client.DirectiveReassign:
			rec.setState(client.HeartbeatRequest{State: client.StateIdle})
		}
	}
	e.start(l)
	if as, _ := l.Assignment(); as.PoolID != "hello" {
		t.Fatalf("registered into %q, want hello", as.PoolID)
	}
	before, _ := l.Credentials()
	if _, err := e.admin.Assign(e.ctx(), l.MachineID(), "other", "rebalance"); err != nil {
		t.Fatal(err)
	}
	linkEventually(t, "the reassign", func() bool { return rec.find(client.DirectiveReassign) != nil })
	if got := rec.kinds(); !slices.Equal(got, []string{client.DirectiveDrain, client.DirectiveReassign}) {
		t.Fatalf("handled %v, want drain then reassign", got)
	}
	as, _ := l.Assignment()
	if as.PoolID != "other" || as.TaskQueueID != "labrunner-link/other" {
		t.Fatalf("assignment after reassign %+v", as)
	}
	if a := rec.lastAssignment(); a == nil || a.PoolID != "other" {
		t.Fatalf("OnAssignment not told of the move: %+v", a)
	}
	after, ok := l.Credentials()
	var cert tcclient.Certificate
	if !ok || after.Certificate == before.Certificate || json.Unmarshal([]byte(after.Certificate), &cert) != nil || !slices.Contains(cert.Scopes, "queue:claim-work:labrunner-link/other") {
		t.Fatalf("credentials after reassign lack the new pool's scope: %+v", cert.Scopes)
	}
	linkEventually(t, "the registry to show the move", func() bool {
		m := e.machine(l.MachineID())
		return m.PoolID == "other" && m.MovingTo == "" && m.State == client.StateIdle
	})
}

// TestLinkRotatesCredentials: a new-credentials directive replaces the
// credentials the link hands out.
func TestLinkRotatesCredentials(t *testing.T) {
	perm := tcclient.Credentials{ClientID: "project/labrunner/provisioner", AccessToken: "permanent-access-token-0123456789abcdef0123"}
	var skew atomic.Int64
	e := newLinkEnv(t, func(c *provisioner.Config) {
		c.DefaultCredentials = &perm
		c.CredentialLifetime = time.Hour
		c.RenewBefore = 30 * time.Minute
		c.AssignInterval = 20 * time.Millisecond
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	e.pool("hello", linkTaskQueue)
	l, rec := e.newLink(filepath.Join(e.dir, "link.json"), func(c *LinkConfig) { c.EnrollmentToken = e.enrollToken(1) })
	e.start(l)
	e.run()
	first, _ := l.Credentials()
	firstExpiry := *l.Status().CredentialsExpire
	// The provisioner's clock jumps to 45 minutes into the credentials'
	// hour: they are due for renewal.
	skew.Store(int64(45 * time.Minute))
	linkEventually(t, "new credentials", func() bool { return rec.find(client.DirectiveNewCredentials) != nil })
	skew.Store(0)
	d := rec.find(client.DirectiveNewCredentials)
	linkEventually(t, "the link to hand out the new credentials", func() bool {
		c, _ := l.Credentials()
		return c.Certificate != first.Certificate
	})
	c, _ := l.Credentials()
	if d.Credentials == nil || c.AccessToken == first.AccessToken {
		t.Fatalf("new-credentials directive %+v; link credentials unchanged", d)
	}
	if exp := l.Status().CredentialsExpire; exp == nil || !exp.After(firstExpiry) {
		t.Fatalf("credential expiry %v, want after %v", exp, firstExpiry)
	}
	if as, _ := l.Assignment(); as.PoolID != "hello" {
		t.Fatalf("rotation lost the pool: %+v", as)
	}
	if a := rec.lastAssignment(); a == nil || a.Credentials == nil || a.Credentials.Certificate == first.Certificate {
		t.Fatal("OnAssignment not told of the new credentials")
	}
}

// TestLinkRegistersAgainWhenTokenRefused: when another registration of the
// same machine replaces its token, the link registers again and keeps its
// machine id; with its enrollment token used up, Run says so.
func TestLinkRegistersAgainWhenTokenRefused(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.pool("hello", linkTaskQueue)
	statePath := filepath.Join(e.dir, "link.json")
	l, rec := e.newLink(statePath, func(c *LinkConfig) { c.EnrollmentToken = e.enrollToken(2) })
	run := e.start(l)
	id := l.MachineID()
	_, firstToken, _ := l.session()

	// The same machine (same serial) registers from elsewhere: the link's
	// token stops working.
	anon := client.New(e.url, "", client.WithRetries(0, 0, 0))
	other, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: linkFacts("link-mini-1"), EnrollmentToken: e.enrollToken(1)})
	if err != nil || other.MachineID != id {
		t.Fatalf("second registration = %+v, %v", other, err)
	}
	linkEventually(t, "the link to register again", func() bool {
		_, tok, _ := l.session()
		return tok != firstToken && tok != other.MachineToken
	})
	if l.MachineID() != id {
		t.Fatalf("machine id changed to %q", l.MachineID())
	}
	moreHeartbeats(t, rec, 2)
	if st := l.Status(); !st.Connected {
		t.Fatalf("status after re-registration: %+v", st)
	}
	if _, err := anon.WithToken(other.MachineToken).Heartbeat(e.ctx(), id, 0, client.HeartbeatRequest{State: client.StateIdle}); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("the replaced token still works: %v", err)
	}
	_, tok, _ := l.session()
	if saved, _ := os.ReadFile(statePath); !strings.Contains(string(saved), tok) {
		t.Fatal("the new machine token is not in the state file")
	}

	// Now the enrollment token is used up: the next refusal is final.
	if _, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: linkFacts("link-mini-1"), EnrollmentToken: e.enrollToken(1)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.done:
		if err := run.err; client.StatusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "register with the provisioner") {
			t.Fatalf("Run = %v, want the refused registration", err)
		}
	case <-time.After(linkWait):
		t.Fatal("Run kept retrying a used-up enrollment token")
	}
	if st := l.Status(); st.Connected || !strings.Contains(st.LastError, "enrollment token") {
		t.Fatalf("status after the refusal: %+v", st)
	}
}

// TestLinkRegistersWithEC2Identity: on EC2 (IMDS served on 127.0.0.1) the
// link registers with the signed identity document instead of an
// enrollment token, and the instance's type, region, AMI and tags reach the
// registry.
func TestLinkRegistersWithEC2Identity(t *testing.T) {
	key, certPEM := linkEC2KeyPair(t)
	e := newLinkEnv(t, func(c *provisioner.Config) {
		c.EC2Certificates = map[string]string{"eu-west-1": certPEM}
		c.EC2Accounts = []string{"123456789012"}
	})
	e.pool("hello", linkTaskQueue)
	doc := `{
  "accountId" : "123456789012",
  "availabilityZone" : "eu-west-1a",
  "imageId" : "ami-0fedcba9876543210",
  "instanceId" : "i-0aaaabbbbccccdddd",
  "instanceType" : "c5.2xlarge",
  "region" : "eu-west-1"
}`
	sum := sha256.Sum256([]byte(doc))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	imds := httptest.NewServer(linkIMDS(doc, base64.StdEncoding.EncodeToString(sig)+"\n", map[string]string{"Name": "win-ci-3", "team": "releng"}))
	defer imds.Close()

	facts, ec2, err := MachineRegistration(e.ctx(), imds.URL)
	if err != nil || ec2 == nil {
		t.Fatalf("MachineRegistration = %v, %v", ec2, err)
	}
	host, _ := os.Hostname()
	if facts.Hostname != host || facts.InstanceType != "c5.2xlarge" || facts.Tags["team"] != "releng" {
		t.Fatalf("facts %+v", facts)
	}
	statePath := filepath.Join(e.dir, "link.json")
	l, _ := e.newLink(statePath, func(c *LinkConfig) { c.Facts, c.EC2 = facts, ec2 })
	run := e.start(l)
	if st := l.Status(); st.Identity != "ec2" {
		t.Fatalf("identity %q", st.Identity)
	}
	m := e.machine(l.MachineID())
	f := m.Facts
	if f.InstanceID != "i-0aaaabbbbccccdddd" || f.Region != "eu-west-1" || f.AMI != "ami-0fedcba9876543210" || f.InstanceType != "c5.2xlarge" ||
		f.AvailabilityZ != "eu-west-1a" || f.Tags["Name"] != "win-ci-3" || f.Tags["team"] != "releng" || m.PoolID != "hello" {
		t.Fatalf("registered facts %+v (pool %q)", f, m.PoolID)
	}

	// After a stop and start, the instance registers again: same machine,
	// fresh token.
	run.stop()
	<-run.done
	_, oldToken, _ := l.session()
	l2, _ := e.newLink(statePath, func(c *LinkConfig) { c.Facts, c.EC2 = facts, ec2 })
	e.start(l2)
	linkEventually(t, "the restarted instance to register again", func() bool {
		_, tok, _ := l2.session()
		return tok != oldToken
	})
	if l2.MachineID() != l.MachineID() {
		t.Fatalf("restarted instance became %q, want %q", l2.MachineID(), l.MachineID())
	}

	// Off EC2, nothing answers: plain facts, no identity.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close()
	facts, ec2, err = MachineRegistration(e.ctx(), nowhere)
	if err != nil || ec2 != nil || facts.InstanceID != "" || facts.Hostname != host {
		t.Fatalf("off EC2: %+v, %v, %v", facts, ec2, err)
	}
	if _, err := NewProvisionerLink(LinkConfig{URL: e.url, StatePath: filepath.Join(e.dir, "x.json"), Facts: facts, Snapshot: func() client.HeartbeatRequest { return client.HeartbeatRequest{} }, Handle: func(context.Context, client.Directive) error { return nil }}); err == nil || !strings.Contains(err.Error(), "enrollmentToken") {
		t.Fatalf("no token and no EC2 identity: %v, want an error naming enrollmentToken", err)
	}
}

// linkEC2KeyPair is a key and self-signed certificate standing in for
// AWS's regional signing certificate.
func linkEC2KeyPair(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test AWS"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// linkIMDS serves IMDSv2: a PUT grants the token every GET must carry.
func linkIMDS(doc, sig string, tags map[string]string) http.Handler {
	const token = "link-imds-token"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "" {
			_, _ = io.WriteString(w, token)
			return
		}
		if r.Method != http.MethodGet || r.Header.Get("X-aws-ec2-metadata-token") != token {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		switch p := r.URL.Path; {
		case p == "/latest/dynamic/instance-identity/document":
			_, _ = io.WriteString(w, doc)
		case p == "/latest/dynamic/instance-identity/signature":
			_, _ = io.WriteString(w, sig)
		case p == "/latest/meta-data/tags/instance":
			var keys []string
			for k := range tags {
				keys = append(keys, k)
			}
			_, _ = io.WriteString(w, strings.Join(keys, "\n"))
		case strings.HasPrefix(p, "/latest/meta-data/tags/instance/"):
			if v, ok := tags[strings.TrimPrefix(p, "/latest/meta-data/tags/instance/")]; ok {
				_, _ = io.WriteString(w, v)
				return
			}
			http.NotFound(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// TestProvisionerConfigSection: the `runner.provisioner` keys parse, bad
// values are named, and LinkConfig fills the link's settings.
func TestProvisionerConfigSection(t *testing.T) {
	var bad ProvisionerConfig
	if err := yaml.Unmarshal([]byte("url: prov.example.com\nheartbeatInterval: 30 seconds\npollWait: -5s\n"), &bad); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`runner.provisioner.heartbeatInterval: "30 seconds" is not a positive duration: write e.g. 30s`,
		`runner.provisioner.pollWait: "-5s" is not a positive duration: write e.g. 30s`,
		`runner.provisioner.url "prov.example.com": not an absolute URL; write https://provisioner.example.com`,
	}
	if got := bad.Problems(); !slices.Equal(got, want) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, want)
	}
	// Plain http only to this machine: the machine token is in every request.
	for url, ok := range map[string]bool{
		"https://prov.lab": true, "http://127.0.0.1:8080": true, "http://[::1]:80": true, "http://localhost:1": true,
		"http://prov.lab": false, "http://10.0.0.5:8080": false, "ftp://prov.lab": false, "https://": false,
	} {
		probs := ProvisionerConfig{URL: url}.Problems()
		if (len(probs) == 0) != ok {
			t.Errorf("url %q: problems %q; want accepted=%v", url, probs, ok)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close()
	var good ProvisionerConfig
	src := "url: https://prov.example.com\nenrollmentToken: lr-enroll-x\nheartbeatInterval: 45s\nimdsEndpoint: " + nowhere + "\n"
	if err := yaml.Unmarshal([]byte(src), &good); err != nil {
		t.Fatal(err)
	}
	if p := good.Problems(); len(p) != 0 || !good.Enabled() {
		t.Fatalf("good section: %v, enabled %v", p, good.Enabled())
	}
	dir := testTempDir(t)
	lc, err := good.LinkConfig(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if lc.URL != "https://prov.example.com" || lc.EnrollmentToken != "lr-enroll-x" || lc.EC2 != nil || lc.HeartbeatInterval != 45*time.Second ||
		lc.StatePath != filepath.Join(dir, "provisioner-link.json") || lc.Facts.Hostname != host || lc.Facts.CPUs <= 0 {
		t.Fatalf("link config %+v", lc)
	}
	if (ProvisionerConfig{}).Enabled() {
		t.Fatal("an empty section enables the provisioner")
	}
}

// TestLinkHeartbeatsToAnOlderProvisioner: a provisioner that predates the
// kind of work refuses a Buildbot build's kind, builder and build number
// as unknown fields; the link then reports the build by task id alone, so
// the machine stays online and busy. Taskcluster runs name no kind.
func TestLinkHeartbeatsToAnOlderProvisioner(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.run()
	e.pool("hello", linkTaskQueue)
	var refused atomic.Int64
	inner := e.srv.Handler()
	// The older provisioner's answer to fields it does not know.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/heartbeat") {
			body, _ := io.ReadAll(r.Body)
			var hb struct {
				CurrentTask map[string]any `json:"currentTask"`
			}
			_ = json.Unmarshal(body, &hb)
			for _, f := range []string{"kind", "builder", "buildNumber"} {
				if _, ok := hb.CurrentTask[f]; ok {
					refused.Add(1)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_ = json.NewEncoder(w).Encode(client.Error{Code: "InvalidRequest", Field: "currentTask." + f,
						Message: fmt.Sprintf("currentTask.%s: unknown field %q: remove it or check its spelling", f, f)})
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	l, rec := e.newLink(filepath.Join(e.dir, "link.json"), func(c *LinkConfig) { c.URL, c.EnrollmentToken = old.URL, e.enrollToken(1) })
	e.start(l)
	id := l.MachineID()

	rec.setState(client.HeartbeatRequest{State: client.StateBusy, CurrentTask: taskRef(CurrentTask{TaskID: "T1", RunID: 2, Kind: SourceTaskcluster})})
	linkEventually(t, "the Taskcluster run in the registry", func() bool {
		m := e.machine(id)
		return m.CurrentTask != nil && m.CurrentTask.TaskID == "T1"
	})
	if refused.Load() != 0 {
		t.Fatal("a Taskcluster run's heartbeat named fields an older provisioner refuses")
	}
	rec.setState(client.HeartbeatRequest{State: client.StateBusy, CurrentTask: taskRef(CurrentTask{TaskID: "T2", Kind: SourceBuildbot,
		Buildbot: &agent.BuildInfo{Builder: "linux-sleep", BuildNumber: 3}})})
	linkEventually(t, "the build in the registry by task id", func() bool {
		m := e.machine(id)
		return m.CurrentTask != nil && m.CurrentTask.TaskID == "T2" && m.State == client.StateBusy
	})
	moreHeartbeats(t, rec, 3)
	if n := refused.Load(); n != 1 {
		t.Fatalf("%d heartbeats refused, want 1 (then reported without the kind of work)", n)
	}
	if st := l.Status(); !st.Connected {
		t.Fatalf("link status %+v, want connected", st)
	}

	cases := []struct {
		err  error
		want bool
	}{
		{&client.APIError{Status: 400, Body: client.Error{Field: "currentTask.builder", Message: `currentTask.builder: unknown field "builder": remove it`}}, true},
		{&client.APIError{Status: 400, Body: client.Error{Field: "currentTask.kind", Message: `currentTask.kind: "x" is not a kind of work`}}, false},
		{&client.APIError{Status: 400, Body: client.Error{Field: "mood", Message: `mood: unknown field "mood"`}}, false},
		{&client.APIError{Status: 503, Body: client.Error{Field: "currentTask.kind", Message: "unknown field"}}, false},
		{errors.New("unknown field"), false},
	}
	for _, c := range cases {
		if got := unknownKindOfWork(c.err); got != c.want {
			t.Errorf("unknownKindOfWork(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
