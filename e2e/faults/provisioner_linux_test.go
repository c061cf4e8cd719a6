package faults

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/faultproxy"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

const adminToken = "faults-provisioner-admin-token-0123456789"

// provEnv is a provisioner on SQLite, handing out the queue's root URL
// (its fault proxy) and credentials, reached by runners through a fault
// proxy of its own; the test's admin client reaches it directly.
type provEnv struct {
	proxy *faultproxy.Proxy
	admin *client.Client
	srv   *provisioner.Server
}

// startProvisioner serves a provisioner with one pool, "lab", of task
// queue queueID and minimum capacity 1, so that the first machine to
// register joins it.
func startProvisioner(t *testing.T, q *queueEnv, queueID string, seed uint64) *provEnv {
	t.Helper()
	return startProvisionerWith(t, q, queueID, seed, nil)
}

// startProvisionerWith is startProvisioner with the config adjusted by
// mod.
func startProvisionerWith(t *testing.T, q *queueEnv, queueID string, seed uint64, mod func(*provisioner.Config)) *provEnv {
	t.Helper()
	creds := q.creds
	cfg := provisioner.Config{
		DB: filepath.Join(t.TempDir(), "prov.db"), AdminTokens: []string{adminToken},
		RootURL: q.proxy.URL(), DefaultCredentials: &creds,
		AssignInterval: time.Second, CancelPollInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := provisioner.New(cfg)
	if err != nil {
		t.Fatalf("provisioner.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	proxy, err := faultproxy.New(hs.URL, seed)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	t.Cleanup(func() { _ = proxy.Close(); cancel(); <-done; hs.Close(); _ = srv.Close() })
	admin := client.New(hs.URL, adminToken, client.WithOperator("faults"))
	if _, err := admin.PutPool(ctx, "lab", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: queueID, MinCapacity: 1, MaxCapacity: 1}); err != nil {
		t.Fatal(err)
	}
	return &provEnv{proxy: proxy, admin: admin, srv: srv}
}

// enrollToken creates a one-use enrollment token.
func (p *provEnv) enrollToken(t *testing.T) string {
	t.Helper()
	tok, err := p.admin.CreateToken(context.Background(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// machines lists every machine the provisioner knows.
func (p *provEnv) machines(t *testing.T) []client.Machine {
	t.Helper()
	list, err := p.admin.ListMachines(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// machine returns one machine.
func (p *provEnv) machine(t *testing.T, id string) *client.MachineDetail {
	t.Helper()
	m, err := p.admin.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitRegistered waits until the runner is registered in pool "lab" and
// returns its machine id.
func waitRegistered(t *testing.T, r *runnerProc) string {
	t.Helper()
	var id string
	waitFor(t, 60*time.Second, "the runner to register into pool lab", func() bool {
		s := r.status()
		if s == nil || s.Provisioner == nil || s.Provisioner.PoolID != "lab" {
			return false
		}
		id = s.Provisioner.MachineID
		return true
	})
	return id
}
