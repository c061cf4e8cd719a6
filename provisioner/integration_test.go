package provisioner

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner/client"
)

func TestCredentialScopesInCertificate(t *testing.T) {
	perm := tcclient.Credentials{ClientID: "project/labrunner/provisioner", AccessToken: "permanent-access-token-0123456789abcdef0123"}
	e := newEnv(t, sqliteURL(t), func(c *Config) {
		c.DefaultCredentials = &perm
		c.CredentialLifetime = 6 * time.Hour
		c.RootURL = "https://tc.example.com"
	})
	spec := tcPool("proj-releng/win11-hw", 1, 3, 0, "windows")
	spec.WorkerGroup = "mdc1"
	e.pool("win11", spec)
	reg, _ := e.enroll(winFacts("t-nuc12-001"))
	creds := reg.Assignment.Credentials
	if creds == nil || reg.Assignment.RootURL != "https://tc.example.com" {
		t.Fatalf("no credentials or root URL in %+v", reg.Assignment)
	}
	if creds.ClientID != perm.ClientID {
		t.Fatalf("clientId %q, want the issuer's %q (unnamed temporary credentials)", creds.ClientID, perm.ClientID)
	}
	var cert tcclient.Certificate
	if err := json.Unmarshal([]byte(creds.Certificate), &cert); err != nil {
		t.Fatalf("certificate is not JSON: %v", err)
	}
	want := []string{
		"assume:worker-type:proj-releng/win11-hw",
		"assume:worker-pool:proj-releng/win11-hw",
		"assume:worker-id:mdc1/t-nuc12-001",
		"queue:worker-id:mdc1/t-nuc12-001",
		"secrets:get:worker-type:proj-releng/win11-hw",
		"secrets:get:worker-pool:proj-releng/win11-hw",
		"queue:claim-work:proj-releng/win11-hw",
	}
	if !slices.Equal(cert.Scopes, want) {
		t.Fatalf("scopes %q\nwant %q", cert.Scopes, want)
	}
	if life := time.Duration(cert.Expiry-cert.Start) * time.Millisecond; life != 6*time.Hour {
		t.Fatalf("certificate lasts %s, want 6h", life)
	}
	// The signature and the derived access token must be what Taskcluster's
	// auth service recomputes from the permanent token.
	check := cert
	if err := check.Sign(perm.AccessToken, ""); err != nil || check.Signature != cert.Signature {
		t.Fatalf("certificate signature does not verify with the permanent token")
	}
	mac := hmac.New(sha256.New, []byte(perm.AccessToken))
	mac.Write([]byte(cert.Seed))
	wantToken := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if creds.AccessToken != wantToken {
		t.Fatalf("temporary access token is not HMAC(permanent, seed)")
	}
	m, _ := e.admin.GetMachine(e.ctx(), reg.MachineID)
	if m.CredentialsExpire == nil {
		t.Fatal("credential expiry not recorded")
	}
}

func TestCredentialsRenewedBeforeExpiry(t *testing.T) {
	perm := tcclient.Credentials{ClientID: "prov", AccessToken: "permanent-access-token-0123456789abcdef0123"}
	e := newEnv(t, sqliteURL(t), func(c *Config) {
		c.DefaultCredentials = &perm
		c.CredentialLifetime = time.Hour
		c.RenewBefore = 10 * time.Minute
	})
	e.pool("win", tcPool("p/win", 1, 3, 0, "windows"))
	reg, mc := e.enroll(winFacts("w1"))
	if err := e.srv.renewCredentials(e.ctx()); err != nil {
		t.Fatal(err)
	}
	if ds, _ := mc.Directives(e.ctx(), reg.MachineID, 0, 0); len(ds) != 0 {
		t.Fatalf("fresh credentials renewed: %+v", ds)
	}
	// Credentials expire on the real clock (client-go's); move the
	// server's clock to 55 min later.
	e.clock.Add(time.Until(reg.Assignment.Credentials.Expires) - 5*time.Minute - time.Until(e.clock.Now()))
	if err := e.srv.renewCredentials(e.ctx()); err != nil {
		t.Fatal(err)
	}
	ds, err := mc.Directives(e.ctx(), reg.MachineID, 0, 0)
	if err != nil || len(ds) != 1 || ds[0].Kind != client.DirectiveNewCredentials || ds[0].Credentials == nil || ds[0].Credentials.Certificate == reg.Assignment.Credentials.Certificate {
		t.Fatalf("directives near expiry = %+v, %v; want one new-credentials", ds, err)
	}
}

// ec2Fixture is a key pair and certificate standing in for AWS's.
type ec2Fixture struct {
	key     *rsa.PrivateKey
	certPEM string
}

func newEC2Fixture(t *testing.T) ec2Fixture {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test AWS"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return ec2Fixture{key: key, certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (f ec2Fixture) sign(t *testing.T, doc string) string {
	sum := sha256.Sum256([]byte(doc))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestRegistrationWithEC2Identity(t *testing.T) {
	aws := newEC2Fixture(t)
	other := newEC2Fixture(t)
	e := newEnv(t, sqliteURL(t), func(c *Config) {
		c.EC2Certificates = map[string]string{"us-east-1": aws.certPEM}
		c.EC2Accounts = []string{"123456789012"}
	})
	e.pool("win-aws", tcPool("p/win-aws", 1, 3, 0, "windows"))
	doc := `{"accountId":"123456789012","architecture":"x86_64","availabilityZone":"us-east-1a","imageId":"ami-0abc","instanceId":"i-0123456789abcdef0","instanceType":"m5.large","region":"us-east-1"}`
	anon := client.New(e.url, "", client.WithRetries(0, 0, 0))
	facts := winFacts("EC2AMAZ-ABC")
	facts.InstanceID = "i-forged"
	reg, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: facts, EC2: &client.EC2Identity{Document: doc, Signature: aws.sign(t, doc)}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := e.admin.GetMachine(e.ctx(), reg.MachineID)
	if m.Facts.InstanceID != "i-0123456789abcdef0" || m.Facts.InstanceType != "m5.large" || m.Facts.AMI != "ami-0abc" || m.Facts.Region != "us-east-1" || reg.Assignment.PoolID != "win-aws" {
		t.Fatalf("facts not taken from the signed document: %+v (pool %q)", m.Facts, reg.Assignment.PoolID)
	}
	// The same instance registering again keeps its id.
	again, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: facts, EC2: &client.EC2Identity{Document: doc, Signature: aws.sign(t, doc)}})
	if err != nil || again.MachineID != reg.MachineID {
		t.Fatalf("re-registration: %+v, %v", again, err)
	}
	tampered := `{"accountId":"123456789012","instanceId":"i-0123456789abcdef1","region":"us-east-1"}`
	wrongAccount := `{"accountId":"999999999999","instanceId":"i-1","region":"us-east-1"}`
	otherRegion := `{"accountId":"123456789012","instanceId":"i-2","region":"eu-west-1"}`
	for name, c := range map[string]struct {
		doc, sig string
		want     int
	}{
		"signature of another document": {tampered, aws.sign(t, doc), 401},
		"signed by another key":         {doc, other.sign(t, doc), 401},
		"account not allowed":           {wrongAccount, aws.sign(t, wrongAccount), 403},
		"region without certificate":    {otherRegion, aws.sign(t, otherRegion), 401},
		"signature not base64":          {doc, "%%%", 400},
		"document not JSON":             {"nope", aws.sign(t, "nope"), 400},
	} {
		_, err := anon.Register(e.ctx(), client.RegisterRequest{Facts: facts, EC2: &client.EC2Identity{Document: c.doc, Signature: c.sig}})
		if client.StatusOf(err) != c.want {
			t.Errorf("%s: %v, want %d", name, err, c.want)
		}
	}
	if _, err := New(Config{DB: sqliteURL(t), EC2Certificates: map[string]string{"us-east-1": "not pem"}}); err == nil {
		t.Error("New accepted a certificate that is not PEM")
	}
}

// TestAgainstDevQueue runs the provisioner against the dev queue with the
// real client: issued credentials claim work, pendingTasks feeds sizing, a
// canceled task reaches the machine as a directive through Pulse, and a
// quarantine is mirrored to the queue.
func TestAgainstDevQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, stack := newDevQueueEnv(ctx, t, func(c *Config, s *devstack.Stack) {
		c.Pulse = s.Bus
		c.Demand = nil
	})
	e.run()
	select {
	case <-e.srv.cancelReady:
	case <-ctx.Done():
		t.Fatal("task-exception consumer never became ready")
	}
	e.pool("hello", tcPool(devTaskQueue, 2, 2, 0, "darwin"))
	reg, mc := e.enroll(macFacts("mini-7"))
	id := reg.MachineID
	if reg.Assignment.Credentials == nil {
		t.Fatal("no credentials issued")
	}

	taskID, err := createDevTask(ctx, stack)
	if err != nil {
		t.Fatal(err)
	}
	sz, err := e.admin.Sizing(ctx, "hello")
	if err != nil || sz.Pending != 1 {
		t.Fatalf("sizing pending = %+v, %v; want 1 from queue.pendingTasks", sz, err)
	}

	// The machine claims with the credentials the provisioner issued.
	c := reg.Assignment.Credentials
	q := tcqueue.New(&tcclient.Credentials{ClientID: c.ClientID, AccessToken: c.AccessToken, Certificate: c.Certificate}, stack.RootURL)
	q.Context = ctx
	claims, err := q.ClaimWork(devTaskQueue, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: reg.Assignment.WorkerGroup, WorkerID: id})
	if err != nil || len(claims.Tasks) != 1 || claims.Tasks[0].Status.TaskID != taskID {
		t.Fatalf("claimWork with issued credentials = %+v, %v", claims, err)
	}
	if _, err := mc.Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: taskID}}); err != nil {
		t.Fatal(err)
	}
	root := tcqueue.New(&stack.Credentials, stack.RootURL)
	root.Context = ctx
	if _, err := root.CancelTask(taskID); err != nil {
		t.Fatal(err)
	}
	var cancelDir *client.Directive
	for cancelDir == nil && ctx.Err() == nil {
		ds, err := mc.Directives(ctx, id, 0, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ds {
			if ds[i].Kind == client.DirectiveCancelTask {
				cancelDir = &ds[i]
			}
		}
	}
	if cancelDir == nil || cancelDir.Task == nil || cancelDir.Task.TaskID != taskID || cancelDir.Reason != "canceled" {
		t.Fatalf("cancel directive = %+v", cancelDir)
	}

	until := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	d, err := e.admin.Quarantine(ctx, id, "flaky USB", until)
	if err != nil || len(d.Warnings) != 0 {
		t.Fatalf("quarantine: %+v, %v", d, err)
	}
	w, err := root.GetWorker("labrunner-prov", "hello", reg.Assignment.WorkerGroup, id)
	if err != nil || !time.Time(w.QuarantineUntil).Equal(until) {
		t.Fatalf("queue worker after quarantine = %+v, %v; want quarantineUntil %s", w, err, until)
	}
	if _, err := e.admin.Unquarantine(ctx, id, "fixed"); err != nil {
		t.Fatal(err)
	}
	w, err = root.GetWorker("labrunner-prov", "hello", reg.Assignment.WorkerGroup, id)
	if err != nil || time.Time(w.QuarantineUntil).After(time.Now()) {
		t.Fatalf("queue worker after unquarantine = %+v, %v", w, err)
	}

	// A worker the queue has never seen is declared before its quarantine.
	reg2, _ := e.enroll(macFacts("mini-8"))
	if _, err := e.admin.Quarantine(ctx, reg2.MachineID, "new and broken", until); err != nil {
		t.Fatal(err)
	}
	w, err = root.GetWorker("labrunner-prov", "hello", reg2.Assignment.WorkerGroup, reg2.MachineID)
	if reg2.Assignment.PoolID != "hello" || (err != nil || !time.Time(w.QuarantineUntil).Equal(until)) {
		t.Fatalf("never-seen worker after quarantine = %+v, %v", w, err)
	}
}

// devTaskQueue is the task queue of the dev-queue tests' pool.
const devTaskQueue = "labrunner-prov/hello"

// createDevTask creates a task in devTaskQueue with client-go, as a
// decision task would.
// newDevQueueEnv is a provisioner on SQLite that uses a dev queue of its
// own (root URL and root credentials set), with mutate applied after.
func newDevQueueEnv(ctx context.Context, t *testing.T, mutate func(c *Config, s *devstack.Stack)) (*env, *devstack.Stack) {
	t.Helper()
	stack, err := devstack.Start(ctx, devstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e := newEnv(t, sqliteURL(t), func(c *Config) {
		c.RootURL = stack.RootURL
		c.DefaultCredentials = &stack.Credentials
		mutate(c, stack)
	})
	return e, stack
}

func createDevTask(ctx context.Context, stack *devstack.Stack) (string, error) {
	q := tcqueue.New(&stack.Credentials, stack.RootURL)
	q.Context = ctx
	taskID := slugid.Nice()
	now := time.Now()
	_, err := q.CreateTask(taskID, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: devTaskQueue,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(24 * time.Hour)),
		Metadata:    tcqueue.TaskMetadata{Name: "t", Description: "provisioner test", Owner: "test@labrunner.invalid", Source: "https://github.com/labrunner/labrunner"},
		Payload:     json.RawMessage(`{"command":[["true"]],"maxRunTime":60}`),
	})
	return taskID, err
}

// TestCancellationPollWithoutPulse: with no Pulse configured, the assigner
// replica polls queue.status for the tasks machines report running.
func TestCancellationPollWithoutPulse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, stack := newDevQueueEnv(ctx, t, func(c *Config, s *devstack.Stack) {
		c.CancelPollInterval = 100 * time.Millisecond
		c.AssignInterval = 100 * time.Millisecond
	})
	e.run()
	eventually(t, "the replica to lead", e.srv.Leading)
	e.pool("hello", tcPool(devTaskQueue, 1, 1, 0, "darwin"))
	reg, mc := e.enroll(macFacts("mini-9"))
	taskID, err := createDevTask(ctx, stack)
	if err != nil {
		t.Fatal(err)
	}
	c := reg.Assignment.Credentials
	q := tcqueue.New(&tcclient.Credentials{ClientID: c.ClientID, AccessToken: c.AccessToken, Certificate: c.Certificate}, stack.RootURL)
	q.Context = ctx
	claims, err := q.ClaimWork(devTaskQueue, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: reg.Assignment.WorkerGroup, WorkerID: reg.MachineID})
	if err != nil || len(claims.Tasks) != 1 {
		t.Fatalf("claimWork = %+v, %v", claims, err)
	}
	if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: taskID}}); err != nil {
		t.Fatal(err)
	}
	root := tcqueue.New(&stack.Credentials, stack.RootURL)
	root.Context = ctx
	if _, err := root.CancelTask(taskID); err != nil {
		t.Fatal(err)
	}
	var got []client.Directive
	for ctx.Err() == nil {
		ds, err := mc.Directives(ctx, reg.MachineID, 0, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = ds
		if len(ds) > 0 && ds[len(ds)-1].Kind == client.DirectiveCancelTask {
			break
		}
	}
	last := got[len(got)-1]
	if last.Kind != client.DirectiveCancelTask || last.Task.TaskID != taskID || last.Reason != "canceled" {
		t.Fatalf("directives %+v; want cancel-task for %s", got, taskID)
	}
	// Only once, however often the poll runs while the machine still
	// reports the task.
	polls := e.srv.cancelPolls.Load()
	eventually(t, "three more polls", func() bool { return e.srv.cancelPolls.Load() >= polls+3 })
	ds, _ := mc.Directives(ctx, reg.MachineID, last.ID, 0)
	for _, d := range ds {
		if d.Kind == client.DirectiveCancelTask {
			t.Fatalf("cancel-task sent twice: %+v", ds)
		}
	}
}
