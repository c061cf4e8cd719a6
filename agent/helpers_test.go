//go:build unix

package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// testDeadline bounds every wait for a condition.
const testDeadline = 60 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quietLogger keeps the stack's info logs out of test output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// env is one test's stack, queue proxy and task queue.
type env struct {
	t           testing.TB
	stack       *devstack.Stack
	proxy       *queueProxy
	root        *tcqueue.Queue
	taskQueueID string
	workerGroup string
	workerID    string
	dir         string
}

func newEnv(t testing.TB, qcfg devqueue.Config) *env {
	t.Helper()
	if qcfg.PollWait == 0 {
		qcfg.PollWait = 2 * time.Second
	}
	if qcfg.ResolverInterval == 0 {
		qcfg.ResolverInterval = 100 * time.Millisecond
	}
	s, err := devstack.Start(context.Background(), devstack.Options{Queue: qcfg, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("start devstack: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p := newQueueProxy(t, s.RootURL)
	creds := s.Credentials
	root := tcqueue.New(&creds, s.RootURL)
	suffix := strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(suffix) > 30 {
		suffix = suffix[len(suffix)-30:]
	}
	return &env{
		t: t, stack: s, proxy: p, root: root,
		taskQueueID: "lab-test/wt-" + suffix,
		workerGroup: "lab",
		workerID:    "w-" + suffix,
		dir:         testTempDir(t),
	}
}

// source is a TCSource through the proxy.
func (e *env) source() *TCSource {
	return NewTCSource(TCSourceConfig{
		RootURL:     e.proxy.URL(),
		Credentials: e.stack.Credentials,
		TaskQueueID: e.taskQueueID,
		WorkerGroup: e.workerGroup,
		WorkerID:    e.workerID,
		RetryFor:    time.Minute,
	})
}

// config is an agent config for this env; tweak before startAgent.
func (e *env) config() Config {
	j, err := OpenJournal(filepath.Join(e.dir, "state", "journal"))
	if err != nil {
		e.t.Fatal(err)
	}
	return Config{
		Source:       e.source(),
		Journal:      j,
		WorkerGroup:  e.workerGroup,
		WorkerID:     e.workerID,
		RootURL:      e.proxy.URL(),
		TasksDir:     filepath.Join(e.dir, "tasks"),
		Version:      "test",
		IdlePollWait: 10 * time.Millisecond,
		KillGrace:    2 * time.Second,
		Logger:       quietLogger(),
		// The tests on this env are about the queue side of a run; the
		// task-user modes have their own (taskuser_linux_test.go).
		TaskUser: platform.TaskUserService,
	}
}

// startAgent runs an agent until the test ends (or stop is called).
func (e *env) startAgent(cfg Config) (stop func()) {
	e.t.Helper()
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("agent.Run: %v", err)
				}
			case <-time.After(testDeadline):
				e.t.Errorf("agent did not stop")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// createTask creates a task with the given payload; mutate may adjust the
// definition.
func (e *env) createTask(payload any, mutate ...func(*tcqueue.TaskDefinitionRequest)) string {
	e.t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID: e.taskQueueID,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(48 * time.Hour)),
		Payload:     raw,
		Metadata: tcqueue.TaskMetadata{
			Name: "agent test", Description: "agent test", Owner: "test@example.com",
			Source: "https://example.com/agent-test",
		},
		Retries: 2,
	}
	for _, m := range mutate {
		m(def)
	}
	id := slugid.Nice()
	if _, err := e.root.CreateTask(id, def); err != nil {
		e.t.Fatalf("createTask: %v", err)
	}
	return id
}

func (e *env) status(taskID string) *tcqueue.TaskStatusStructure {
	e.t.Helper()
	st, err := e.root.Status(taskID)
	if err != nil {
		e.t.Fatalf("status %s: %v", taskID, err)
	}
	return &st.Status
}

// waitRun waits until run runID of the task is resolved and returns it.
func (e *env) waitRun(taskID string, runID int) tcqueue.RunInformation {
	e.t.Helper()
	var run tcqueue.RunInformation
	waitFor(e.t, fmt.Sprintf("task %s run %d resolved", taskID, runID), func() bool {
		st := e.status(taskID)
		if len(st.Runs) <= runID {
			return false
		}
		run = st.Runs[runID]
		return run.State != "pending" && run.State != "running"
	})
	return run
}

func expectRun(t testing.TB, run tcqueue.RunInformation, state, reason string) {
	t.Helper()
	if run.State != state || run.ReasonResolved != reason {
		t.Fatalf("run %d resolved %s/%s, want %s/%s", run.RunID, run.State, run.ReasonResolved, state, reason)
	}
}

// artifacts lists a run's artifacts by name.
func (e *env) artifacts(taskID string, runID int) map[string]tcqueue.Artifact {
	e.t.Helper()
	resp, err := e.root.ListArtifacts(taskID, strconv.Itoa(runID), "", "")
	if err != nil {
		e.t.Fatalf("listArtifacts: %v", err)
	}
	out := map[string]tcqueue.Artifact{}
	for _, a := range resp.Artifacts {
		out[a.Name] = a
	}
	return out
}

// artifactContent downloads an artifact (following links and redirects)
// and undoes a gzip content encoding.
func (e *env) artifactContent(taskID string, runID int, name string) string {
	e.t.Helper()
	u, err := e.root.GetArtifact_SignedURL(taskID, strconv.Itoa(runID), name, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Get(u.String())
	if err != nil {
		e.t.Fatalf("get artifact %s: %v", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("get artifact %s: %s: %s", name, resp.Status, b)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" || bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			e.t.Fatalf("gunzip %s: %v", name, err)
		}
		b, err = io.ReadAll(zr)
		if err != nil {
			e.t.Fatalf("gunzip %s: %v", name, err)
		}
	}
	return string(b)
}

// shPayload is a payload running one shell script.
func shPayload(script string, maxRunTime int) map[string]any {
	return map[string]any{
		"command":    [][]string{{"/bin/sh", "-c", script}},
		"maxRunTime": maxRunTime,
	}
}

// queueProxy sits between the agent and devstack: it records every
// request and can inject failures and delays.
type queueProxy struct {
	srv    *httptest.Server
	target *url.URL

	mu     sync.Mutex
	calls  []call
	faults func(r *http.Request, n int) fault
	n      int
}

// fault is what the proxy does to one request: wait delay, then answer
// status instead of forwarding, or (lost) forward it and answer 500 in
// place of the queue's answer, as when a response is lost on the way.
type fault struct {
	status int
	delay  time.Duration
	lost   bool
}

type call struct {
	method, path, clientID string
	status                 int
}

var hawkID = regexp.MustCompile(`id="([^"]*)"`)

func newQueueProxy(t testing.TB, target string) *queueProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &queueProxy{target: u}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Aborted long polls are expected when an agent stops.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.n++
		n, faults := p.n, p.faults
		p.mu.Unlock()
		c := call{method: r.Method, path: r.URL.EscapedPath()}
		if m := hawkID.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			c.clientID = m[1]
		}
		if faults != nil {
			f := faults(r, n)
			if f.delay > 0 {
				time.Sleep(f.delay)
			}
			if f.status != 0 {
				c.status = f.status
				p.record(c)
				http.Error(w, "injected fault", f.status)
				return
			}
			if f.lost {
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, r)
				c.status = http.StatusBadGateway
				p.record(c)
				http.Error(w, "injected fault: answer lost", http.StatusBadGateway)
				return
			}
		}
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		rp.ServeHTTP(rec, r)
		c.status = rec.status
		p.record(c)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *queueProxy) URL() string { return p.srv.URL }

func (p *queueProxy) record(c call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

func (p *queueProxy) setFaults(f func(r *http.Request, n int) fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// callsMatching returns the recorded calls whose path contains all parts.
func (p *queueProxy) callsMatching(method string, parts ...string) []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []call
next:
	for _, c := range p.calls {
		if method != "" && c.method != method {
			continue
		}
		for _, s := range parts {
			if !strings.Contains(c.path, s) {
				continue next
			}
		}
		out = append(out, c)
	}
	return out
}

// reports are the resolution calls made for a task.
func (p *queueProxy) reports(taskID string) []call {
	var out []call
	for _, c := range p.callsMatching(http.MethodPost, "/task/"+taskID+"/runs/") {
		if strings.HasSuffix(c.path, "/completed") || strings.HasSuffix(c.path, "/failed") || strings.HasSuffix(c.path, "/exception") {
			out = append(out, c)
		}
	}
	return out
}

// waitReports waits until a successful resolution call for the task is
// recorded (the proxy records a call only once its answer is sent) and
// returns all of them.
func (e *env) waitReports(taskID string) []call {
	e.t.Helper()
	var out []call
	waitFor(e.t, "report of "+taskID+" recorded", func() bool {
		out = e.proxy.reports(taskID)
		for _, c := range out {
			if c.status == http.StatusOK {
				return true
			}
		}
		return false
	})
	return out
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// readPid waits for a script to write a pid into path.
func readPid(t testing.TB, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// alive reports whether pid is a live, non-zombie process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] != 'Z'
}
