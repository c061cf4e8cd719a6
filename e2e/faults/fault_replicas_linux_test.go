package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
)

// replica is a `provisioner serve` process.
type replica struct {
	url  string
	cmd  *exec.Cmd
	done chan error
}

// startReplica runs the provisioner binary on the PostgreSQL database db.
func startReplica(t *testing.T, name, db string, q *queueEnv, assignInterval time.Duration) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	cfg := map[string]any{
		"listen": addr, "db": db, "rootUrl": q.direct, "adminTokens": []string{adminToken},
		"credentials":    map[string]any{"default": map[string]string{"clientId": q.creds.ClientID, "accessToken": q.creds.AccessToken}},
		"assignInterval": assignInterval.String(), "moveInterval": "1s",
	}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "provisioner.yml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "provisioner.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "provisioner"), "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start provisioner %s: %v", name, err)
	}
	_ = logf.Close()
	r := &replica{url: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-r.done
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("provisioner %s log:\n%s", name, b)
		}
	})
	waitFor(t, 60*time.Second, "provisioner "+name+" to serve", func() bool { _, err := r.leading(); return err == nil })
	return r
}

// leading reads the replica's assigner-leader gauge from /metrics.
func (r *replica) leading() (bool, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.url + "/metrics")
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "labrunner_provisioner_assigner_leader "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("no leader gauge in %s/metrics", r.url)
}

// registry is what must survive a replica: the pools and, for each
// machine, its pool.
func registry(t *testing.T, admin *client.Client) (pools []string, machines map[string]string) {
	t.Helper()
	ctx := context.Background()
	ps, err := admin.ListPools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		pools = append(pools, p.PoolID)
	}
	slices.Sort(pools)
	ms, err := admin.ListMachines(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	machines = map[string]string{}
	for _, m := range ms {
		machines[m.MachineID] = m.PoolID
	}
	return pools, machines
}

// Two provisioner replicas on one PostgreSQL database; the one running the
// assigner is killed (SIGKILL): the other takes the assigner lock within
// one assign interval, serves every pool and machine, and assigns.
func TestFaultProvisionerReplicaKilled(t *testing.T) {
	t.Parallel()
	const assignInterval = 3 * time.Second
	// The follower tries the lock every assign interval, so it takes over
	// at its first try after the kill, within one interval; the bound
	// allows the try after that too, because on a loaded two-core machine
	// a try and the /metrics probe that sees it can take a second or more.
	// A lock held on by the dead replica's session (what this guards
	// against) would take minutes to go.
	const takeoverBound = 2 * assignInterval
	db := testsvc.Postgres(t)
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second}, 6)
	a := startReplica(t, "a", db, q, assignInterval)
	waitFor(t, 60*time.Second, "replica a to run the assigner", func() bool { l, _ := a.leading(); return l })
	b := startReplica(t, "b", db, q, assignInterval)
	if l, _ := b.leading(); l {
		t.Fatal("both replicas run the assigner")
	}
	admin := client.New(b.url, adminToken, client.WithOperator("faults"))
	ctx := context.Background()
	for id, spec := range map[string]client.PoolSpec{
		"build": {Source: client.SourceTaskcluster, TaskQueueID: "faults/build", MinCapacity: 2, MaxCapacity: 4},
		"test":  {Source: client.SourceTaskcluster, TaskQueueID: "faults/test", MaxCapacity: 4},
	} {
		if _, err := admin.PutPool(ctx, id, spec); err != nil {
			t.Fatal(err)
		}
	}
	register := func(host string) string {
		t.Helper()
		tok, err := admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := client.New(b.url, "").Register(ctx, client.RegisterRequest{EnrollmentToken: tok.Token,
			Facts: client.Facts{Hostname: host, OS: "linux", Arch: "amd64", Serial: "serial-" + host, CPUs: 2, MemoryMB: 2048}})
		if err != nil {
			t.Fatalf("register %s: %v", host, err)
		}
		if _, err := client.New(b.url, reg.MachineToken).Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
			t.Fatalf("heartbeat of %s: %v", host, err)
		}
		return reg.MachineID
	}
	register("replica-m1")
	register("replica-m2")
	poolsBefore, machinesBefore := registry(t, admin)

	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	killed := time.Now()
	waitFor(t, time.Minute, "replica b to run the assigner", func() bool { l, _ := b.leading(); return l })
	took := time.Since(killed)
	if took > takeoverBound {
		t.Errorf("replica b took over %s after the kill, want within one assign interval (%s; bound on a loaded machine %s)", took.Round(time.Millisecond), assignInterval, takeoverBound)
	}
	poolsAfter, machinesAfter := registry(t, admin)
	if !slices.Equal(poolsBefore, poolsAfter) || fmt.Sprint(machinesBefore) != fmt.Sprint(machinesAfter) {
		t.Errorf("registry after the kill: pools %v machines %v; before: pools %v machines %v", poolsAfter, machinesAfter, poolsBefore, machinesBefore)
	}

	// The new leader assigns: a machine that no pool's minimum claims is
	// placed by the test pool's demand (one pending task).
	q.create(taskSpec{queueID: "faults/test", script: "true"})
	m3 := register("replica-m3")
	var placed time.Duration
	waitFor(t, time.Minute, "the new leader to place the new machine in pool test", func() bool {
		m, err := admin.GetMachine(ctx, m3)
		placed = time.Since(killed)
		return err == nil && m.PoolID == "test"
	})
	_, machinesEnd := registry(t, admin)
	for id, pool := range machinesBefore {
		if _, ok := machinesEnd[id]; !ok {
			t.Errorf("machine %s (pool %s) lost", id, pool)
		}
	}
	figure(t, "assigning replica killed: the other took over in %s (assign interval %s); %d pools and %d machines kept; a new machine placed by demand %s after the kill",
		took.Round(time.Millisecond), assignInterval, len(poolsAfter), len(machinesAfter), placed.Round(time.Millisecond))
}
