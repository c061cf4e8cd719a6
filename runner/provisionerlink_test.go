package runner

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

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
