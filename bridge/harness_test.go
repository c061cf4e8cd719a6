package bridge

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// setup is one combination of services the scenarios run on.
type setup struct {
	name string
	real bool // RabbitMQ and MariaDB; otherwise the in-process bus and SQLite
}

var setups = []setup{{"sqlite-inprocess", false}, {"mariadb-rabbitmq", true}}

// forEachSetup runs f as a subtest on every setup.
func forEachSetup(t *testing.T, f func(t *testing.T, s setup)) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) { f(t, s) })
	}
}

const (
	goodBuilder       = "builder good name"
	anotherBuilder    = "another good name"
	restrictedBuilder = "restricted builder name"
	ignoredBuilder    = "builder ignored name"
)

func testBuilders() map[string]BuilderDef {
	def := BuilderDef{Steps: []StepDef{{Name: "build", Command: []string{"make", "%(prop:product)s", "--task=%(prop:taskId)s"}}},
		Env: map[string]string{"PRODUCT": "%(prop:product)s", "BRANCH": "%(prop:branch:-none)s"}, MaxRunTime: 600}
	return map[string]BuilderDef{goodBuilder: def, anotherBuilder: def, restrictedBuilder: def, "i'm a good builder": def,
		ignoredBuilder: def, "restricted builder ignored name": def}
}

// envOpts adjusts an environment.
type envOpts struct {
	selfServe    bool          // run a fake self-serve and point the bridge at it
	claimTimeout time.Duration // dev queue claim timeout (default 1200 s)
	allThings    string        // allthethings_url
	builders     map[string]BuilderDef
	mutate       func(*Config)
	// On the real setup: the RabbitMQ URL and the maker of MariaDB
	// databases (default: the machine's shared servers, testsvc).
	amqpURL  string
	newMySQL func(testing.TB) string
}

// env is a dev queue, Pulse, the two databases and any number of bridges.
type env struct {
	t          testing.TB
	s          setup
	stack      *devstack.Stack
	q          *tcqueue.Queue
	prov, wt   string
	cfg        Config
	selfServe  *fakeSelfServe
	publisher  pulse.Publisher
	bridges    []*runningBridge
	mu         sync.Mutex
	sdbDSN     string
	storeDSN   string
	sdb        *schedulerdb.DB
	st         *store.Store
	amqpURL    string
	logger     *slog.Logger
	instanceNo int
}

// runningBridge is one bridge instance with its HTTP server.
type runningBridge struct {
	b      *Bridge
	srv    *httptest.Server
	client *client.Client
	cancel context.CancelFunc
	done   chan error
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LABRUNNER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newEnv(t testing.TB, s setup, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := &env{t: t, s: s, logger: testLogger(t)}
	pulseURL := ""
	if s.real {
		pulseURL = o.amqpURL
		if pulseURL == "" {
			pulseURL = testsvc.AMQPURL(t)
		}
		e.amqpURL = pulseURL
	}
	stack, err := devstack.Start(ctx, devstack.Options{PulseURL: pulseURL, Logger: e.logger,
		Queue: devqueue.Config{ResolverInterval: 50 * time.Millisecond, DeadlineDelay: -1, ClaimTimeout: o.claimTimeout}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e.stack = stack
	e.publisher = stack.Bus
	e.q = tcqueue.New(&stack.Credentials, stack.RootURL)
	u := testsvc.Unique()
	e.prov, e.wt = "bbb-"+u, "bbb"
	dialect := "sqlite"
	if s.real {
		dialect = "mysql"
		newMySQL := testsvc.MySQL
		if o.newMySQL != nil {
			newMySQL = o.newMySQL
		}
		e.sdbDSN, e.storeDSN = newMySQL(t), newMySQL(t)
	} else {
		dir := t.TempDir()
		e.sdbDSN, e.storeDSN = filepath.Join(dir, "schedulerdb.sqlite"), filepath.Join(dir, "bbb.sqlite")
	}
	builders := o.builders
	if builders == nil {
		builders = testBuilders()
	}
	e.cfg = Config{
		Taskcluster: TaskclusterConfig{RootURL: stack.RootURL, ClientID: stack.Credentials.ClientID, AccessToken: stack.Credentials.AccessToken},
		BBBDB:       DBConfig{Dialect: dialect, DSN: e.storeDSN},
		SchedulerDB: DBConfig{Dialect: dialect, DSN: e.sdbDSN},
		Pulse:       PulseConfig{URL: pulseURL, QueueBasename: "queue/bbb-test/" + u, Prefetch: 8, DeadLetterExchange: "exchange/bbb-test-dead/" + u},
		TCListener:  TCListenerConfig{ProvisionerID: e.prov, WorkerType: e.wt},
		BBListener:  BBListenerConfig{Exchange: "exchange/build-test/" + u},
		// Tests drive the reflector with ReflectOnce.
		Reflector:          ReflectorConfig{Interval: time.Hour, ReclaimThreshold: 600 * time.Second, UnboundAfter: time.Hour},
		Retry:              RetryConfig{Attempts: 3, Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		RestrictedBuilders: []string{".*restricted.*"},
		IgnoredBuilders:    []string{".*ignored.*"},
		AllThingsURL:       o.allThings,
		Builders:           builders,
		Logger:             e.logger,
	}
	if !s.real {
		e.cfg.Bus = stack.Bus
	}
	if o.selfServe {
		e.selfServe = newFakeSelfServe(t)
		e.cfg.SelfServeURL = e.selfServe.srv.URL + "/self-serve"
	}
	if o.mutate != nil {
		o.mutate(&e.cfg)
	}
	if s.real {
		t.Cleanup(func() { deleteAMQP(t, pulseURL, e.cfg) })
	}
	return e
}

// deleteAMQP removes the test's queues and exchanges from the shared broker.
func deleteAMQP(t testing.TB, u string, cfg Config) {
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
	for _, q := range []string{"task-pending", "task-exception", "started", "log_uploaded", "dead-letter"} {
		_, _ = ch.QueueDelete(cfg.Pulse.QueueBasename+"/"+q, false, false, false)
	}
	_ = ch.ExchangeDelete(cfg.BBListener.Exchange, false, false)
	_ = ch.ExchangeDelete(cfg.Pulse.DeadLetterExchange, false, false)
}

// newBridge builds an instance without running it.
func (e *env) newBridge() *Bridge {
	e.t.Helper()
	cfg := e.cfg
	e.mu.Lock()
	e.instanceNo++
	cfg.InstanceID = fmt.Sprintf("test-%d", e.instanceNo)
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := New(ctx, cfg)
	if err != nil {
		e.t.Fatalf("bridge.New: %v", err)
	}
	return b
}

// start runs a new bridge instance and waits until its queues are bound.
func (e *env) start() *runningBridge {
	e.t.Helper()
	b := e.newBridge()
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBridge{b: b, cancel: cancel, done: make(chan error, 1), srv: httptest.NewServer(b.Handler())}
	c, err := client.New(rb.srv.URL, client.Options{RetryMax: 3, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 100 * time.Millisecond, Logger: e.logger})
	if err != nil {
		e.t.Fatal(err)
	}
	rb.client = c
	go func() { rb.done <- b.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := b.WaitReady(wctx); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.bridges = append(e.bridges, rb)
	e.mu.Unlock()
	e.t.Cleanup(rb.stop)
	if e.sdb == nil {
		e.sdb, e.st = b.SchedulerDB(), b.Store()
	}
	return rb
}

// stop ends the instance and closes what it opened; safe to call twice.
func (rb *runningBridge) stop() {
	if rb.cancel == nil {
		return
	}
	rb.cancel()
	<-rb.done
	rb.srv.Close()
	_ = rb.b.Close()
	rb.cancel = nil
}

// handled sums, over the running bridges, the messages of queue handled.
func (e *env) handled(queue string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0.0
	for _, rb := range e.bridges {
		for _, outcome := range []string{"ok", "dead-letter"} {
			n += counterValue(rb.b.metrics.messages.WithLabelValues(queue, outcome))
		}
	}
	return int(n)
}

// waitHandled waits until queue's handled count reaches n.
func (e *env) waitHandled(queue string, n int) {
	e.t.Helper()
	waitFor(e.t, fmt.Sprintf("%d %s messages handled", n, queue), func() bool { return e.handled(queue) >= n })
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// payload is a valid bridged payload for builder.
func payload(builder string) map[string]any {
	return map[string]any{"buildername": builder, "properties": map[string]any{"product": "foo"},
		"sourcestamp": map[string]any{"branch": "http://foo.com/blah"}}
}

// createTask creates a pending task for the bridge's worker type.
func (e *env) createTask(p map[string]any, mod func(*tcqueue.TaskDefinitionRequest)) string {
	e.t.Helper()
	raw, _ := json.Marshal(p)
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(48 * time.Hour)),
		Metadata:    tcqueue.TaskMetadata{Name: "bbb test", Description: "a bridged task", Owner: "dev@example.com", Source: "https://example.com/bbb"},
		Payload:     raw,
		TaskQueueID: e.prov + "/" + e.wt,
		Retries:     5,
	}
	if mod != nil {
		mod(def)
	}
	id := slugid.Nice()
	if _, err := e.q.CreateTask(id, def); err != nil {
		e.t.Fatalf("createTask: %v", err)
	}
	return id
}

// waitRow waits until taskID's row has a build request and returns it.
func (e *env) waitRow(taskID string) store.Task {
	e.t.Helper()
	var row store.Task
	waitFor(e.t, "build request of "+taskID, func() bool {
		r, err := e.st.GetTask(context.Background(), taskID)
		row = r
		return err == nil && r.BuildRequestID != nil
	})
	return row
}

func (e *env) noRow(taskID string) bool {
	_, err := e.st.GetTask(context.Background(), taskID)
	return errors.Is(err, store.ErrNotFound)
}

// status returns the task's queue status.
func (e *env) status(taskID string) tcqueue.TaskStatusStructure {
	e.t.Helper()
	st, err := e.q.Status(taskID)
	if err != nil {
		e.t.Fatalf("status %s: %v", taskID, err)
	}
	return st.Status
}

// waitRun waits until run runID of taskID is in state (and reason, if given).
func (e *env) waitRun(taskID string, runID int, state, reason string) tcqueue.RunInformation {
	e.t.Helper()
	var run tcqueue.RunInformation
	waitFor(e.t, fmt.Sprintf("run %d of %s %s/%s", runID, taskID, state, reason), func() bool {
		st := e.status(taskID)
		if runID >= len(st.Runs) {
			return false
		}
		run = st.Runs[runID]
		return run.State == state && (reason == "" || run.ReasonResolved == reason)
	})
	return run
}

// requestsForTask counts the build requests injected for taskID.
func (e *env) requestsForTask(taskID string) int {
	e.t.Helper()
	var n int
	if err := e.sdb.SQL().QueryRow("SELECT COUNT(*) FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid WHERE bs.external_idstring = ?",
		schedulerdb.ExternalIDPrefix+taskID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// publishBuild publishes a Buildbot build event as a master would.
func (e *env) publishBuild(event, builder string, number int, p BuildPayload) {
	e.t.Helper()
	word := builder
	if event == "started" {
		word = BuilderRoutingWord(builder)
	}
	key := fmt.Sprintf("build.%s.%d.%s", word, number, event)
	body, err := NewBuildMessage(e.cfg.BBListener.Exchange, key, "bm-test", "inc-1", p, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.publisher.Publish(ctx, pulse.Outgoing{Exchange: e.cfg.BBListener.Exchange, RoutingKey: key, Body: body}); err != nil {
		e.t.Fatalf("publish %s: %v", key, err)
	}
}

// agent is a worker driving the master API.
type agent struct {
	e     *env
	c     *client.Client
	id    string
	build *client.Build
}

func (e *env) agent(rb *runningBridge, id string) *agent { return &agent{e: e, c: rb.client, id: id} }

// claim claims a build of builders, waiting up to 10 s for one.
func (a *agent) claim(builders ...string) *client.Build {
	a.e.t.Helper()
	if len(builders) == 0 {
		builders = []string{goodBuilder}
	}
	var b *client.Build
	waitFor(a.e.t, "a build to claim", func() bool {
		var err error
		b, err = a.c.Claim(context.Background(), client.ClaimRequest{WorkerID: a.id, Builders: builders, Wait: 1})
		if err != nil {
			a.e.t.Fatalf("claim: %v", err)
		}
		return b != nil
	})
	a.build = b
	return b
}

func (a *agent) finish(result int, props map[string]any, logURL string) client.FinishResponse {
	a.e.t.Helper()
	raw := map[string]json.RawMessage{}
	for k, v := range props {
		raw[k], _ = json.Marshal(v)
	}
	res, err := a.c.Finish(context.Background(), client.FinishRequest{WorkerID: a.id, Incarnation: a.build.Incarnation,
		BuildID: a.build.BuildID, Result: result, Properties: raw, LogURL: logURL})
	if err != nil {
		a.e.t.Fatalf("finish: %v", err)
	}
	return res
}

func (a *agent) heartbeat() client.HeartbeatResponse {
	a.e.t.Helper()
	res, err := a.c.Heartbeat(context.Background(), client.HeartbeatRequest{WorkerID: a.id, Incarnation: a.build.Incarnation, BuildID: a.build.BuildID})
	if err != nil {
		a.e.t.Fatalf("heartbeat: %v", err)
	}
	return res
}

// fakeSelfServe records self-serve DELETEs and answers 202, or 404 for
// request paths listed in notFound.
type fakeSelfServe struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []string
	users []string
}

func newFakeSelfServe(t testing.TB) *fakeSelfServe {
	f := &fakeSelfServe{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/self-serve"))
		f.users = append(f.users, r.Header.Get("X-Remote-User"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK","request_id":1}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSelfServe) get() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]string(nil), f.users...)
}

// artifact fetches a run's artifact content.
func (e *env) artifact(taskID string, runID int, name string) []byte {
	e.t.Helper()
	u, err := e.q.GetArtifact_SignedURL(taskID, fmt.Sprint(runID), name, time.Minute)
	if err != nil {
		e.t.Fatalf("artifact URL %s: %v", name, err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		e.t.Fatalf("get artifact %s: %v", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("get artifact %s: HTTP %d %s", name, resp.StatusCode, body)
	}
	return body
}

// artifactNames lists a run's artifacts.
func (e *env) artifactNames(taskID string, runID int) []string {
	e.t.Helper()
	res, err := e.q.ListArtifacts(taskID, fmt.Sprint(runID), "", "")
	if err != nil {
		e.t.Fatalf("list artifacts: %v", err)
	}
	var out []string
	for _, a := range res.Artifacts {
		out = append(out, a.Name)
	}
	return out
}

func storeNewTask(taskID string) store.NewTask {
	return store.NewTask{TaskID: taskID, RunID: 0, Created: time.Now()}
}
