//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// TestCLIRunWithProvisionerAndStatus: `runner run` with a configuration
// naming only a provisioner registers and runs a task from the assigned
// pool; `runner status` prints the provisioner line and `--json` its object.
func TestCLIRunWithProvisionerAndStatus(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := devstack.Start(context.Background(), devstack.Options{Queue: devqueue.Config{PollWait: 300 * time.Millisecond}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	dir, err := os.MkdirTemp("", "lrp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	const admin = "cli-test-admin-token-0123456789abcdef"
	prov, err := provisioner.New(provisioner.Config{
		DB: filepath.Join(dir, "prov.db"), AdminTokens: []string{admin}, Logger: quiet,
		RootURL: s.RootURL, DefaultCredentials: &s.Credentials, CancelPollInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(prov.Handler())
	t.Cleanup(func() { hs.Close(); _ = prov.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ac := client.New(hs.URL, admin, client.WithRetries(0, 0, 0))
	wt := "wt-" + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(wt) > 38 {
		wt = wt[:38]
	}
	queue := "lab/" + wt
	if _, err := ac.PutPool(ctx, "hello", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: queue, MinCapacity: 1, MaxCapacity: 1}); err != nil {
		t.Fatal(err)
	}
	tok, err := ac.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noIMDS := "http://" + ln.Addr().String()
	ln.Close()
	cfg := map[string]any{
		"stateDir": filepath.Join(dir, "state"), "tasksDir": filepath.Join(dir, "tasks"), "idlePollWait": "10ms",
		"taskUser": "service", // the CLI is under test, not task users
		"runner": map[string]any{
			"drainGrace":  "2s",
			"checks":      map[string]any{"diskFreeMinMB": 1, "memFreeMinMB": 1},
			"provisioner": map[string]any{"url": hs.URL, "enrollmentToken": tok.Token, "heartbeatInterval": "200ms", "pollWait": "2s", "imdsEndpoint": noIMDS},
		},
	}
	b, _ := json.Marshal(cfg)
	e := &cliEnv{t: t, dir: dir, config: filepath.Join(dir, "runner.yml"), taskQueue: queue}
	if err := os.WriteFile(e.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	creds := s.Credentials
	e.queue = tcqueue.New(&creds, s.RootURL)

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, _, stderr := execute(runCtx, "run", "--config", e.config); code != 0 {
			t.Errorf("runner run exited %d:\n%s", code, stderr)
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	st := e.waitStatus("registered with the provisioner", func(s *runner.Status) bool {
		return s.Provisioner != nil && s.Provisioner.Connected && s.Provisioner.PoolID == "hello"
	})
	id := st.Provisioner.MachineID
	task := e.createTask("echo provisioned")
	// The link reports the connection before the runner has applied the
	// assignment, so the machine fields are read once a task has run.
	st = e.waitStatus("the task done", func(s *runner.Status) bool {
		return s.Counters.TasksTotal == 1 && len(s.RecentTasks) == 1 && s.RecentTasks[0].TaskID == task && s.RecentTasks[0].Resolution == "completed"
	})
	if st.Machine.TaskQueueID != queue || st.Machine.WorkerID != id {
		t.Fatalf("status machine %+v, want the assigned queue and worker id", st.Machine)
	}
	out := e.cli("status")
	want := "connected to " + hs.URL + " as " + id + ", pool hello"
	found := false
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "provisioner ") && strings.Contains(l, want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("runner status lacks the provisioner line %q:\n%s", want, out)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.cli("status", "--json")), &doc); err != nil {
		t.Fatal(err)
	}
	var p struct {
		URL        string `json:"url"`
		MachineID  string `json:"machineId"`
		Registered bool   `json:"registered"`
	}
	if err := json.Unmarshal(doc["provisioner"], &p); err != nil || p.URL != hs.URL || p.MachineID != id || !p.Registered {
		t.Fatalf("status --json provisioner: %s (%v)", doc["provisioner"], err)
	}
}
