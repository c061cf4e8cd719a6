package agent

// Mounts through the dev queue with client-go, on every OS the agent
// tests run on (the commands' shape is in mounts_*_test.go): an upstream
// task publishes a zip (public) and a tar.zst (private, so fetched with the
// run's credentials); a downstream task mounts both read-only, a writable
// cache and a file from a URL, and its commands check the content; a
// second task with the same cacheName sees the first one's file; a wrong
// sha256 and a zip-slip archive fail their tasks.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	"github.com/klauspost/compress/zstd"
	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcpurgecache"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// mountEnv is a dev queue with an agent claiming from one task queue.
type mountEnv struct {
	t           *testing.T
	stack       *devstack.Stack
	root        *tcqueue.Queue
	taskQueueID string
	dir         string
	// lastTaskID is the task run made last.
	lastTaskID string
}

func newMountEnv(t *testing.T) *mountEnv {
	s, err := devstack.Start(context.Background(), devstack.Options{
		Queue:  devqueue.Config{PollWait: time.Second, ResolverInterval: 100 * time.Millisecond},
		Logger: quietMountLogger(),
	})
	if err != nil {
		t.Fatalf("start devstack: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	creds := s.Credentials
	suffix := strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(suffix) > 30 {
		suffix = suffix[len(suffix)-30:]
	}
	return &mountEnv{t: t, stack: s, root: tcqueue.New(&creds, s.RootURL), taskQueueID: "lab-test/m-" + suffix, dir: testTempDir(t)}
}

// startAgent runs an agent on the env's task queue until the test ends;
// adjust may change its configuration first.
func (e *mountEnv) startAgent(adjust ...func(*Config)) {
	cfg := Config{
		Source: NewTCSource(TCSourceConfig{
			RootURL: e.stack.RootURL, Credentials: e.stack.Credentials, TaskQueueID: e.taskQueueID,
			WorkerGroup: "lab", WorkerID: "mounts-test", RetryFor: time.Minute,
		}),
		WorkerGroup: "lab", WorkerID: "mounts-test", RootURL: e.stack.RootURL,
		TasksDir: filepath.Join(e.dir, "tasks"), Version: "test", IdlePollWait: 10 * time.Millisecond,
		KillGrace: 2 * time.Second, Logger: quietMountLogger(), TaskUser: platform.TaskUserService,
		PurgeCache: NewPurgeCache(e.stack.RootURL, e.taskQueueID, func() tcclient.Credentials { return e.stack.Credentials }),
	}
	for _, f := range adjust {
		f(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			e.t.Error("agent did not stop")
		}
	})
}

// publishUpstream plays an upstream task: it creates, claims and
// completes a task on a queue of its own, with the given artifacts.
func (e *mountEnv) publishUpstream(artifacts map[string][]byte) string {
	t := e.t
	queueID := e.taskQueueID + "-up"
	now := time.Now().UTC()
	id := slugid.Nice()
	_, err := e.root.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: queueID, Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)),
		Expires: tcclient.Time(now.Add(48 * time.Hour)), Payload: json.RawMessage(`{}`),
		Metadata: tcqueue.TaskMetadata{Name: "upstream", Description: "upstream", Owner: "test@example.com", Source: "https://example.com/up"},
	})
	if err != nil {
		t.Fatalf("createTask: %v", err)
	}
	var claim *tcqueue.ClaimWorkResponse
	for range 20 {
		claim, err = e.root.ClaimWork(queueID, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "lab", WorkerID: "upstream"})
		if err != nil {
			t.Fatalf("claimWork: %v", err)
		}
		if len(claim.Tasks) == 1 {
			break
		}
	}
	if len(claim.Tasks) != 1 {
		t.Fatal("upstream task not claimed")
	}
	for name, body := range artifacts {
		req, _ := json.Marshal(map[string]any{"storageType": "s3", "contentType": "application/octet-stream",
			"expires": tcclient.Time(now.Add(24 * time.Hour))})
		pr := tcqueue.PostArtifactRequest(req)
		resp, err := e.root.CreateArtifact(id, "0", name, &pr)
		if err != nil {
			t.Fatalf("createArtifact %s: %v", name, err)
		}
		var s3 struct {
			PutURL string `json:"putUrl"`
		}
		if err := json.Unmarshal(*resp, &s3); err != nil {
			t.Fatal(err)
		}
		put, _ := http.NewRequest(http.MethodPut, s3.PutURL, bytes.NewReader(body))
		put.Header.Set("Content-Type", "application/octet-stream")
		r, err := http.DefaultClient.Do(put)
		if err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("upload %s: %s", name, r.Status)
		}
	}
	if _, err := e.root.ReportCompleted(id, "0"); err != nil {
		t.Fatalf("reportCompleted: %v", err)
	}
	return id
}

// run creates a task with the payload and waits for its resolution; it
// returns the run and the task log.
func (e *mountEnv) run(payload map[string]any, scopes, deps []string) (tcqueue.RunInformation, string) {
	t := e.t
	t.Helper()
	raw, _ := json.Marshal(payload)
	now := time.Now().UTC()
	id := slugid.Nice()
	e.lastTaskID = id
	_, err := e.root.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: e.taskQueueID, Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)),
		Expires: tcclient.Time(now.Add(48 * time.Hour)), Payload: raw, Scopes: scopes, Dependencies: deps,
		Metadata: tcqueue.TaskMetadata{Name: "mounts", Description: "mounts", Owner: "test@example.com", Source: "https://example.com/mounts"},
	})
	if err != nil {
		t.Fatalf("createTask: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := e.root.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(st.Status.Runs); n > 0 && st.Status.Runs[0].State != "pending" && st.Status.Runs[0].State != "running" {
			buf, _, _, err := e.root.DownloadArtifactToBuf(id, 0, "public/logs/live_backing.log")
			if err != nil {
				t.Fatalf("task log: %v", err)
			}
			return st.Status.Runs[0], string(buf)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not resolved in time", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarZstOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for name, body := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestMountsThroughTheQueue(t *testing.T) {
	e := newMountEnv(t)
	zipBytes := zipOf(t, map[string]string{"harness/readme.txt": "harness-from-zip\n"})
	zstBytes := tarZstOf(t, map[string]string{"toolchain/version.txt": "toolchain-from-zst\n"})
	up := e.publishUpstream(map[string][]byte{"public/harness.zip": zipBytes, "private/toolchain.tar.zst": zstBytes})
	var urlHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		urlHits.Add(1)
		_, _ = w.Write([]byte("config-from-url\n"))
	}))
	defer srv.Close()
	e.startAgent()

	mountsPayload := []map[string]any{
		{"directory": "harness", "format": "zip", "content": map[string]any{"taskId": up, "artifact": "public/harness.zip", "sha256": hexDigest(zipBytes)}},
		{"directory": "tc", "format": "tar.zst", "content": map[string]any{"taskId": up, "artifact": "private/toolchain.tar.zst"}},
		{"file": "conf/app.cfg", "content": map[string]any{"url": srv.URL + "/app.cfg"}},
		{"directory": "cache/build", "cacheName": "build-cache"},
	}
	// The task's own credentials fetch the private artifact: like the real
	// queue, the dev queue wants queue:get-artifact:<name> for it.
	scopes := []string{"generic-worker:cache:build-cache", "queue:get-artifact:private/toolchain.tar.zst"}
	first := mountPayload(mountsPayload,
		checkFile("harness/harness/readme.txt", "harness-from-zip"),
		checkFile("tc/toolchain/version.txt", "toolchain-from-zst"),
		checkFile("conf/app.cfg", "config-from-url"),
		writeFile("cache/build/left.txt", "left-by-first"),
	)
	run, log := e.run(first, scopes, []string{up})
	if run.State != "completed" {
		t.Fatalf("first task %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
	second := mountPayload(mountsPayload, checkFile("cache/build/left.txt", "left-by-first"))
	run, log = e.run(second, scopes, []string{up})
	if run.State != "completed" {
		t.Fatalf("second task %s/%s: the cache did not carry the first task's file; log:\n%s", run.State, run.ReasonResolved, log)
	}
	if !strings.Contains(log, "[mounts] Found existing download of task "+up+" artifact public/harness.zip") {
		t.Errorf("the second task fetched the zip again; log:\n%s", log)
	}
	if n := urlHits.Load(); n != 1 {
		t.Errorf("the URL was fetched %d times, want once", n)
	}

	// A cache needs its scope.
	run, log = e.run(second, nil, []string{up})
	if run.State != "exception" || run.ReasonResolved != "malformed-payload" || !strings.Contains(log, "generic-worker:cache:build-cache") {
		t.Errorf("without the cache scope: %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
}

func TestMountWrongSHA256AndZipSlipFail(t *testing.T) {
	e := newMountEnv(t)
	good := zipOf(t, map[string]string{"a.txt": "a\n"})
	slip := zipOf(t, map[string]string{"ok.txt": "ok\n", "../../escaped.txt": "escaped\n"})
	up := e.publishUpstream(map[string][]byte{"public/good.zip": good, "public/slip.zip": slip})
	e.startAgent()

	wrong := strings.Repeat("0", 64)
	p := mountPayload([]map[string]any{{"directory": "d", "format": "zip",
		"content": map[string]any{"taskId": up, "artifact": "public/good.zip", "sha256": wrong}}}, writeFile("ran.txt", "ran"))
	run, log := e.run(p, nil, []string{up})
	if run.State != "failed" {
		t.Errorf("wrong sha256: %s/%s, want failed", run.State, run.ReasonResolved)
	}
	if !strings.Contains(log, wrong) || !strings.Contains(log, hexDigest(good)) {
		t.Errorf("the log does not name the expected %s and the actual %s:\n%s", wrong, hexDigest(good), log)
	}
	if strings.Contains(log, "Executing command") {
		t.Errorf("commands ran despite the failed mount:\n%s", log)
	}

	p = mountPayload([]map[string]any{{"directory": "d", "format": "zip",
		"content": map[string]any{"taskId": up, "artifact": "public/slip.zip"}}}, writeFile("ran.txt", "ran"))
	run, log = e.run(p, nil, []string{up})
	if run.State != "failed" || !strings.Contains(log, `archive entry "../../escaped.txt" refused`) {
		t.Errorf("zip slip: %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
	matches, _ := filepath.Glob(filepath.Join(e.dir, "*", "escaped.txt"))
	more, _ := filepath.Glob(filepath.Join(e.dir, "escaped.txt"))
	if len(matches)+len(more) > 0 {
		t.Errorf("the zip slip wrote %v", append(matches, more...))
	}

	// An artifact mount needs its task among the dependencies.
	run, log = e.run(mountPayload([]map[string]any{{"file": "f", "content": map[string]any{"taskId": up, "artifact": "public/good.zip"}}}, writeFile("x", "x")), nil, nil)
	if run.ReasonResolved != "malformed-payload" || !strings.Contains(log, "task.dependencies: needs to include "+up) {
		t.Errorf("missing dependency: %s/%s; log:\n%s", run.State, run.ReasonResolved, log)
	}
}

func TestCachesPurgedByRequestAndByExitStatus(t *testing.T) {
	e := newMountEnv(t)
	e.startAgent()
	cache := []map[string]any{{"directory": "c", "cacheName": "purge-me"}}
	scopes := []string{"generic-worker:cache:purge-me"}

	run, log := e.run(mountPayload(cache, writeFile("c/f.txt", "one")), scopes, nil)
	if run.State != "completed" {
		t.Fatalf("first task %s/%s:\n%s", run.State, run.ReasonResolved, log)
	}
	root := e.stack.Credentials
	if err := tcpurgecache.New(&root, e.stack.RootURL).PurgeCache(e.taskQueueID, &tcpurgecache.PurgeCacheRequest{CacheName: "purge-me"}); err != nil {
		t.Fatalf("purgeCache: %v", err)
	}
	// The purge request removes the cache; this task leaves a file and
	// exits 1, which its onExitStatus.purgeCaches names.
	p := mountPayload(cache, checkAbsent("c/f.txt"), writeFile("c/f.txt", "two"), exitWith(1))
	p["onExitStatus"] = map[string]any{"purgeCaches": []int{1}}
	run, log = e.run(p, scopes, nil)
	if run.State != "failed" || !strings.Contains(log, `Removed writable directory cache "purge-me": purge requested`) {
		t.Fatalf("second task %s/%s (want failed by exit 1, after the purge request):\n%s", run.State, run.ReasonResolved, log)
	}
	run, log = e.run(mountPayload(cache, checkAbsent("c/f.txt")), scopes, nil)
	if run.State != "completed" {
		t.Fatalf("third task %s/%s: the exit status did not purge the cache:\n%s", run.State, run.ReasonResolved, log)
	}
}
