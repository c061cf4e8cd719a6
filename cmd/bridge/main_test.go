package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// A command-line mistake is a usage error: serve without --config exits 2
// and says what is missing, as BBB's v2 CLI did.
func TestServeWithoutConfigIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--config is required") {
		t.Fatalf("exit %d, stderr %q; want 2 and a usage error", code, errOut.String())
	}
	if code := run(context.Background(), []string{"serve", "--bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"status"}, &out, &errOut); code != 2 {
		t.Fatalf("status without --url: exit %d, want 2", code)
	}
}

// serve runs from a YAML config against RabbitMQ and SQLite files, answers
// status, and stops on cancellation.
func TestServeAndStatus(t *testing.T) {
	amqpURL := testsvc.AMQPURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stack.Close() }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	u := testsvc.Unique()
	t.Cleanup(func() { deleteQueues(t, amqpURL, "queue/bbb-cmd-test/"+u, "exchange/build-cmd-test/"+u) })
	cfgPath := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(filepath.Join(dir, "builders.yaml"), []byte("builders:\n  b1:\n    steps: [{command: [\"true\"]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`instance_id: cmd-test
listen: %q
taskcluster: {root_url: %q, client_id: %q, access_token: %q}
bbb_db: {dialect: sqlite, dsn: %q}
buildbot_scheduler_db: {dialect: sqlite, dsn: %q}
pulse: {url: %q, queue_basename: "queue/bbb-cmd-test/%s"}
builders_file: %q
bblistener: {pulse_exchange: "exchange/build-cmd-test/%s"}
tclistener: {provisioner_id: "bbb-%s", worker_type: bbb}
`, addr, stack.RootURL, stack.Credentials.ClientID, stack.Credentials.AccessToken, filepath.Join(dir, "bbb.db"), filepath.Join(dir, "sched.db"),
		amqpURL, u, filepath.Join(dir, "builders.yaml"), u, u)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() { done <- run(sctx, []string{"serve", "--config", cfgPath}, &bytes.Buffer{}, &serveErr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/v1/status")
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %v; stderr %s", err, serveErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out bytes.Buffer
	if code := run(ctx, []string{"status", "--config", cfgPath}, &out, &out); code != 0 {
		t.Fatalf("status exit %d: %s", code, out.String())
	}
	for _, want := range []string{"instance", "cmd-test", "tasks tracked", "0 (queued 0", "dead letters", "lag"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit %d after cancel; stderr %s", code, serveErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// deleteQueues removes the test's durable queues and exchange from the
// shared broker.
func deleteQueues(t *testing.T, u, basename, exchange string) {
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, q := range []string{"task-pending", "task-exception", "started", "log_uploaded"} {
		_, _ = ch.QueueDelete(basename+"/"+q, false, false, false)
	}
	_ = ch.ExchangeDelete(exchange, false, false)
}
