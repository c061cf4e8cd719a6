//go:build linux

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/bridge"
	bbclient "github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/platform"
)

// graphEnv is a devstack, a bridge listening to a bridged task queue, a
// log store and an agent claiming from both the bridge and a native queue.
type graphEnv struct {
	t                 *testing.T
	stack             *devstack.Stack
	q                 *tcqueue.Queue
	bridge            *bridge.Bridge
	bridgeClient      *bbclient.Client
	bridgedQ, nativeQ string
	logs              *logStore
	dir               string
	agentCancel       context.CancelFunc
	agentDone         chan error
	bridgeURL         string
	builderNames      []string // the builders the agent runs
	log               *slog.Logger
}

// setup is one combination of services the tests run on.
type setup struct {
	name string
	real bool // RabbitMQ and MariaDB; otherwise the in-process bus and SQLite
}

// forEachSetup runs f as a subtest on every setup.
func forEachSetup(t *testing.T, f func(t *testing.T, s setup)) {
	for _, s := range []setup{{"sqlite-inprocess", false}, {"mariadb-rabbitmq", true}} {
		t.Run(s.name, func(t *testing.T) { f(t, s) })
	}
}

// deleteAMQP removes the test's queues and exchanges from the shared broker.
func deleteAMQP(t *testing.T, u string, cfg bridge.Config) {
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
		_, _ = ch.QueueDelete(cfg.Pulse.QueueBasename+"/"+q, false, false, false)
	}
	_ = ch.ExchangeDelete(cfg.BBListener.Exchange, false, false)
	_ = ch.ExchangeDelete(cfg.Pulse.DeadLetterExchange, false, false)
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("LABRUNNER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newGraphEnv starts everything; builders are defined by the caller (their
// steps may refer to e.dir, a scratch directory).
func newGraphEnv(t *testing.T, s setup, builders func(dir string) map[string]bridge.BuilderDef, results map[string]agent.BuilderResults) *graphEnv {
	t.Helper()
	e := newBareEnv(t, s, builders)
	e.startAgent(e.builderNames, results, e.log)
	return e
}

// newBareEnv is newGraphEnv without the agent.
func newBareEnv(t *testing.T, s setup, builders func(dir string) map[string]bridge.BuilderDef) *graphEnv {
	t.Helper()
	log := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pulseURL := ""
	if s.real {
		pulseURL = testsvc.AMQPURL(t)
	}
	stack, err := devstack.Start(ctx, devstack.Options{Logger: log, PulseURL: pulseURL,
		Queue: devqueue.Config{ResolverInterval: 50 * time.Millisecond, DeadlineDelay: -1, PollWait: time.Second}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e := &graphEnv{t: t, stack: stack, q: tcqueue.New(&stack.Credentials, stack.RootURL), dir: t.TempDir(), logs: newLogStore(t)}
	u := testsvc.Unique()
	prov := "bbb-" + u
	e.bridgedQ, e.nativeQ = prov+"/bbb", "native-"+u+"/lab"
	dbDir := t.TempDir()
	cfg := bridge.Config{
		Taskcluster: bridge.TaskclusterConfig{RootURL: stack.RootURL, ClientID: stack.Credentials.ClientID, AccessToken: stack.Credentials.AccessToken},
		BBBDB:       bridge.DBConfig{Dialect: "sqlite", DSN: filepath.Join(dbDir, "bbb.sqlite")},
		SchedulerDB: bridge.DBConfig{Dialect: "sqlite", DSN: filepath.Join(dbDir, "schedulerdb.sqlite")},
		Pulse:       bridge.PulseConfig{QueueBasename: "queue/bbb-e2e/" + u, Prefetch: 8, DeadLetterExchange: "exchange/bbb-e2e-dead/" + u},
		TCListener:  bridge.TCListenerConfig{ProvisionerID: prov, WorkerType: "bbb"},
		BBListener:  bridge.BBListenerConfig{Exchange: "exchange/build-e2e/" + u},
		Reflector:   bridge.ReflectorConfig{Interval: time.Hour, ReclaimThreshold: 600 * time.Second, UnboundAfter: time.Hour},
		Retry:       bridge.RetryConfig{Attempts: 3, Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Builders:    builders(e.dir),
		InstanceID:  "e2e",
		Logger:      log,
	}
	if s.real {
		bbbDSN, sdbDSN := testsvc.MySQL(t), testsvc.MySQL(t)
		cfg.BBBDB, cfg.SchedulerDB = bridge.DBConfig{Dialect: "mysql", DSN: bbbDSN}, bridge.DBConfig{Dialect: "mysql", DSN: sdbDSN}
		cfg.Pulse.URL = pulseURL
		t.Cleanup(func() { deleteAMQP(t, pulseURL, cfg) })
	} else {
		cfg.Bus = stack.Bus
	}
	b, err := bridge.New(ctx, cfg)
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	e.bridge = b
	bctx, bcancel := context.WithCancel(context.Background())
	bdone := make(chan error, 1)
	go func() { bdone <- b.Run(bctx) }()
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(func() {
		bcancel()
		<-bdone
		srv.Close()
		_ = b.Close()
	})
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	e.bridgeURL = srv.URL
	e.bridgeClient, err = bbclient.New(srv.URL, bbclient.Options{RetryMax: 3, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 100 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for name := range cfg.Builders {
		if !strings.HasPrefix(name, "unserved") {
			e.builderNames = append(e.builderNames, name)
		}
	}
	e.log = log
	return e
}

// startAgent runs one agent whose pool is "both": the bridge's builders
// and the native queue.
func (e *graphEnv) startAgent(names []string, results map[string]agent.BuilderResults, log *slog.Logger) {
	e.t.Helper()
	bb, err := agent.NewBBSource(agent.BBSourceConfig{Client: e.bridgeClient, Builders: names, WorkerID: "lab-1",
		Results: results, LogUploadURL: e.logs.srv.URL + "/logs", ClaimWait: 1, Logger: log})
	if err != nil {
		e.t.Fatal(err)
	}
	tc := agent.NewTCSource(agent.TCSourceConfig{RootURL: e.stack.RootURL, Credentials: e.stack.Credentials, TaskQueueID: e.nativeQ,
		WorkerGroup: "lab", WorkerID: "lab-1", RetryFor: 10 * time.Second})
	src, err := agent.NewMultiSource(log, bb, tc)
	if err != nil {
		e.t.Fatal(err)
	}
	// The heartbeat interval and the builds' kill grace are the defaults,
	// whose sum the cancel test holds to; the agent's grace is its default
	// 10 s, which builds must not wait for.
	a, err := agent.New(agent.Config{Source: src, TasksDir: filepath.Join(e.dir, "tasks"), RootURL: e.stack.RootURL, Capacity: 2,
		WorkerGroup: "lab", WorkerID: "lab-1", IdlePollWait: 50 * time.Millisecond, ErrorPollWait: 200 * time.Millisecond,
		KillGrace: 10 * time.Second, Logger: log,
		// These tests follow work through the bridge and the queue; task
		// users have tests of their own (agent/taskuser_linux_test.go).
		TaskUser: platform.TaskUserService})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.agentCancel, e.agentDone = cancel, make(chan error, 1)
	go func() { e.agentDone <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-e.agentDone
	})
}

// createBridged creates task A: routed to the bridge for builder.
func (e *graphEnv) createBridged(builder string) string {
	e.t.Helper()
	return e.create(e.bridgedQ, map[string]any{"buildername": builder, "properties": map[string]any{"product": "firefox"}}, nil)
}

// createNative creates task B: a native task run by the agent after deps.
func (e *graphEnv) createNative(deps ...string) string {
	e.t.Helper()
	return e.create(e.nativeQ, map[string]any{"command": [][]string{{"sh", "-c", "echo native task ran"}}, "maxRunTime": 60}, deps)
}

func (e *graphEnv) create(queueID string, payload map[string]any, deps []string) string {
	e.t.Helper()
	raw, _ := json.Marshal(payload)
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(48 * time.Hour)),
		Metadata:     tcqueue.TaskMetadata{Name: "mixed graph", Description: "e2e", Owner: "dev@example.com", Source: "https://example.com/e2e"},
		Payload:      raw,
		TaskQueueID:  queueID,
		Dependencies: deps,
		Retries:      5,
	}
	id := slugid.Nice()
	if _, err := e.q.CreateTask(id, def); err != nil {
		e.t.Fatalf("createTask: %v", err)
	}
	return id
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *graphEnv) status(taskID string) tcqueue.TaskStatusStructure {
	e.t.Helper()
	st, err := e.q.Status(taskID)
	if err != nil {
		e.t.Fatalf("status %s: %v", taskID, err)
	}
	return st.Status
}

// waitState waits until taskID's state is state and returns its status.
func (e *graphEnv) waitState(taskID, state string) tcqueue.TaskStatusStructure {
	e.t.Helper()
	var st tcqueue.TaskStatusStructure
	waitFor(e.t, fmt.Sprintf("task %s %s", taskID, state), func() bool {
		st = e.status(taskID)
		return st.State == state
	})
	return st
}

// artifact fetches a task's latest artifact through the queue's redirect.
func (e *graphEnv) artifact(taskID, name string) []byte {
	e.t.Helper()
	u, err := e.q.GetLatestArtifact_SignedURL(taskID, name, time.Minute)
	if err != nil {
		e.t.Fatalf("artifact URL %s %s: %v", taskID, name, err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		e.t.Fatalf("get %s of %s: %v", name, taskID, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("get %s of %s: HTTP %d %s", name, taskID, resp.StatusCode, body)
	}
	return body
}

// buildRequests lists (complete, results) of the build requests of taskID.
func (e *graphEnv) buildRequests(taskID string) [][2]int {
	e.t.Helper()
	rows, err := e.bridge.SchedulerDB().SQL().Query("SELECT br.complete, COALESCE(br.results, -1) FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid WHERE bs.external_idstring = ?",
		schedulerdb.ExternalIDPrefix+taskID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out [][2]int
	for rows.Next() {
		var r [2]int
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// logStore keeps PUT bodies and serves them back, as the log server a
// Buildbot master uploads to.
type logStore struct {
	srv  *httptest.Server
	mu   sync.Mutex
	logs map[string][]byte
}

func newLogStore(t *testing.T) *logStore {
	s := &logStore{logs: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			s.logs[r.URL.Path] = body
		case http.MethodGet:
			body, ok := s.logs[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/gzip")
			_, _ = w.Write(body)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("log is not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip log: %v", err)
	}
	return string(out)
}
