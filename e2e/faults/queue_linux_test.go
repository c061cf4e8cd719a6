package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/faultproxy"
)

// queueEnv is a dev queue whose root URL is a fault proxy: everything the
// runner does with the queue (API calls, artifact uploads) goes through
// the proxy, while the test reaches the queue directly.
type queueEnv struct {
	t      *testing.T
	proxy  *faultproxy.Proxy
	direct string // the queue's own base URL
	creds  tcclient.Credentials
	q      *tcqueue.Queue // direct, never faulted
	hc     *http.Client   // direct, for artifact content
}

// startQueue serves a dev queue with cfg's timings behind a fault proxy
// seeded with seed.
func startQueue(t *testing.T, cfg devqueue.Config, seed uint64) *queueEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	direct := "http://" + ln.Addr().String()
	proxy, err := faultproxy.New(direct, seed)
	if err != nil {
		t.Fatal(err)
	}
	token, err := devstack.NewAccessToken()
	if err != nil {
		t.Fatal(err)
	}
	creds := tcclient.Credentials{ClientID: "static/taskcluster/root", AccessToken: token}
	cfg.RootURL = proxy.URL()
	cfg.Clients = map[string]string{creds.ClientID: creds.AccessToken}
	cfg.RootClientID = creds.ClientID
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.DeadlineDelay == 0 {
		cfg.DeadlineDelay = -1
	}
	srv, err := devqueue.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = hs.Serve(ln); done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		_ = proxy.Close()
		cancel()
		_ = hs.Close()
		<-done
		<-done
	})
	proxyHost := strings.TrimPrefix(proxy.URL(), "http://")
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == proxyHost { // blob URLs name the root URL: read them directly
			req.URL.Host = ln.Addr().String()
		}
		return nil
	}}
	return &queueEnv{t: t, proxy: proxy, direct: direct, creds: creds, q: tcqueue.New(&creds, direct), hc: hc}
}

// taskSpec is a task to create: its queue, shell script and retries.
type taskSpec struct {
	queueID    string
	script     string
	maxRunTime int
}

// create creates a task that runs spec.script with sh and returns its id.
func (e *queueEnv) create(spec taskSpec) string {
	e.t.Helper()
	if spec.maxRunTime == 0 {
		spec.maxRunTime = 600
	}
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"sh", "-c", spec.script}}, "maxRunTime": spec.maxRunTime})
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(2 * time.Hour)), Expires: tcclient.Time(now.Add(48 * time.Hour)),
		Metadata:    tcqueue.TaskMetadata{Name: "fault suite", Description: e.t.Name(), Owner: "dev@example.com", Source: "https://example.com/faults"},
		Payload:     payload,
		TaskQueueID: spec.queueID,
		Retries:     5,
	}
	id := slugid.Nice()
	if _, err := e.q.CreateTask(id, def); err != nil {
		e.t.Fatalf("createTask: %v", err)
	}
	return id
}

// status is the task's status, straight from the queue.
func (e *queueEnv) status(taskID string) tcqueue.TaskStatusStructure {
	e.t.Helper()
	st, err := e.q.Status(taskID)
	if err != nil {
		e.t.Fatalf("status of %s: %v", taskID, err)
	}
	return st.Status
}

// waitResolved waits until taskID is completed, failed or exception.
func (e *queueEnv) waitResolved(taskID string, limit time.Duration) tcqueue.TaskStatusStructure {
	e.t.Helper()
	var st tcqueue.TaskStatusStructure
	waitFor(e.t, limit, "task "+taskID+" to be resolved", func() bool {
		st = e.status(taskID)
		return st.State == "completed" || st.State == "failed" || st.State == "exception"
	})
	return st
}

// runResolved waits until run runID of taskID is resolved and returns it.
func (e *queueEnv) runResolved(taskID string, runID int, limit time.Duration) tcqueue.RunInformation {
	e.t.Helper()
	var run tcqueue.RunInformation
	waitFor(e.t, limit, fmt.Sprintf("run %d of %s to be resolved", runID, taskID), func() bool {
		st := e.status(taskID)
		if len(st.Runs) <= runID {
			return false
		}
		run = st.Runs[runID]
		return run.State != "running" && run.State != "pending"
	})
	return run
}

// artifactNames lists the artifacts of one run.
func (e *queueEnv) artifactNames(taskID string, runID int) []string {
	e.t.Helper()
	list, err := e.q.ListArtifacts(taskID, fmt.Sprint(runID), "", "")
	if err != nil {
		e.t.Fatalf("list artifacts of %s/%d: %v", taskID, runID, err)
	}
	var names []string
	for _, a := range list.Artifacts {
		names = append(names, a.Name)
	}
	return names
}

// artifact returns an artifact's content, or an error if it has none.
func (e *queueEnv) artifact(taskID string, runID int, name string) (string, error) {
	u, err := e.q.GetArtifact_SignedURL(taskID, fmt.Sprint(runID), name, time.Minute)
	if err != nil {
		return "", fmt.Errorf("artifact URL: %w", err)
	}
	resp, err := e.hc.Get(u.String())
	if err != nil {
		return "", fmt.Errorf("get %s: %w", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s of %s/%d: HTTP %d", name, taskID, runID, resp.StatusCode)
	}
	return string(b), nil
}

// waitFor polls cond every 100 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, limit time.Duration, path string) {
	t.Helper()
	waitFor(t, limit, path+" to exist", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// fileContaining reports whether a file under dir contains s.
func fileContaining(dir, s string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
			found = true
		}
		return nil
	})
	return found
}
