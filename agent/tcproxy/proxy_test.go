package tcproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
)

// fixture is a dev stack with one claimed task and a proxy for its run.
type fixture struct {
	stack  *devstack.Stack
	root   *tcqueue.Queue
	taskID string
	claim  tcqueue.TaskClaim
	proxy  *Proxy
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newFixture claims a task with scopes and starts a proxy as the agent
// does: the run's credentials, authorized for the task's scopes plus
// queue:create-artifact:<taskId>/<runId>. rootURL, if set, replaces the
// stack's URL for the proxy.
func newFixture(t testing.TB, scopes []string, rootURL string) *fixture {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	creds := s.Credentials
	root := tcqueue.New(&creds, s.RootURL)
	tq := fmt.Sprintf("proxy-test/w%d", time.Now().UnixNano())
	now := time.Now().UTC()
	id := slugid.Nice()
	_, err = root.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: tq, Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload: json.RawMessage(`{}`), Scopes: scopes,
		Metadata: tcqueue.TaskMetadata{Name: "proxy", Description: "proxy", Owner: "test@example.com", Source: "https://example.com/proxy"},
	})
	if err != nil {
		t.Fatalf("createTask: %v", err)
	}
	res, err := root.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "lab", WorkerID: "w1"})
	if err != nil || len(res.Tasks) != 1 {
		t.Fatalf("claimWork: %v (%d tasks)", err, len(res.Tasks))
	}
	c := res.Tasks[0]
	if rootURL == "" {
		rootURL = s.RootURL
	}
	p, err := Start(Config{
		RootURL: rootURL,
		Credentials: tcclient.Credentials{
			ClientID: c.Credentials.ClientID, AccessToken: c.Credentials.AccessToken, Certificate: c.Credentials.Certificate,
			AuthorizedScopes: append(append([]string{}, scopes...), "queue:create-artifact:"+id+"/0"),
		},
		Version: "test",
		Logger:  quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &fixture{stack: s, root: root, taskID: id, claim: c, proxy: p}
}

// do sends one request to the proxy and returns the answer and its body.
func (f *fixture) do(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.proxy.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// createArtifact creates an s3 artifact through the proxy and uploads
// content to its putUrl.
func (f *fixture) createArtifact(t *testing.T, escapedName, content string) {
	t.Helper()
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	resp, body := f.do(t, http.MethodPost, "/api/queue/v1/task/"+f.taskID+"/runs/0/artifacts/"+escapedName,
		`{"storageType": "s3", "contentType": "text/plain", "expires": "`+exp+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("createArtifact %s through the proxy: %s: %s", escapedName, resp.Status, body)
	}
	var s3 tcqueue.S3ArtifactResponse
	if err := json.Unmarshal([]byte(body), &s3); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, s3.PutURL, strings.NewReader(content))
	req.Header.Set("Content-Type", "text/plain")
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	put.Body.Close()
	if put.StatusCode != 200 {
		t.Fatalf("upload %s: %s", escapedName, put.Status)
	}
}

func TestProxySignsWithRunCredentials(t *testing.T) {
	f := newFixture(t, []string{"queue:get-artifact:private/ok/*"}, "")
	if !strings.HasPrefix(f.proxy.URL(), "http://127.0.0.1:") {
		t.Errorf("proxy URL %s is not on 127.0.0.1", f.proxy.URL())
	}

	resp, body := f.do(t, http.MethodGet, "/api/queue/v1/task/"+f.taskID, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"proxy-test/`) {
		t.Fatalf("GET task through the proxy: %s: %s", resp.Status, body)
	}
	if got := resp.Header.Get("X-Taskcluster-Proxy-Temp-ClientId"); got != f.claim.Credentials.ClientID {
		t.Errorf("X-Taskcluster-Proxy-Temp-ClientId = %q, want the run's %q", got, f.claim.Credentials.ClientID)
	}
	if got := resp.Header.Get("X-Taskcluster-Endpoint"); got != f.stack.RootURL+"/api/queue/v1/task/"+f.taskID {
		t.Errorf("X-Taskcluster-Endpoint = %q", got)
	}
	var authorized []string
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Taskcluster-Authorized-Scopes")), &authorized); err != nil || len(authorized) != 2 {
		t.Errorf("X-Taskcluster-Authorized-Scopes = %q", resp.Header.Get("X-Taskcluster-Authorized-Scopes"))
	}

	// The older form of path reaches the same endpoint.
	if resp, body := f.do(t, http.MethodGet, "/queue/v1/task/"+f.taskID+"/status", ""); resp.StatusCode != 200 || !strings.Contains(body, f.taskID) {
		t.Errorf("GET /queue/v1/task/<id>/status: %s: %s", resp.Status, body)
	}

	// Writes are signed too: the artifact lands on the task's run.
	f.createArtifact(t, "public%2Fhello.txt", "hello through the proxy")
	f.createArtifact(t, "private/ok/a.txt", "allowed")
	f.createArtifact(t, "private/secret.txt", "not for this task")
	buf, _, _, err := f.root.DownloadArtifactToBuf(f.taskID, 0, "public/hello.txt")
	if err != nil || string(buf) != "hello through the proxy" {
		t.Fatalf("artifact created through the proxy = %q, %v", buf, err)
	}

	// Reads are limited to the task's scopes: the queue refuses the rest.
	resp, body = f.do(t, http.MethodGet, "/api/queue/v1/task/"+f.taskID+"/runs/0/artifacts/private/secret.txt", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "InsufficientScopes") {
		t.Errorf("GET a private artifact the task has no scope for: %s: %s; want 403 InsufficientScopes", resp.Status, body)
	}
	resp, body = f.do(t, http.MethodGet, "/api/queue/v1/task/"+f.taskID+"/runs/0/artifacts/private/ok/a.txt", "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") == "" {
		t.Errorf("GET a private artifact within the task's scopes: %s: %s; want the queue's 303, not followed", resp.Status, body)
	}
}

func TestProxyRefusesOtherHostsAndBadPaths(t *testing.T) {
	f := newFixture(t, nil, "")
	for _, path := range []string{"/queue.example.com/v1/ping", "/queue", "/api/queue", "/-bad-/v1/ping"} {
		if resp, body := f.do(t, http.MethodGet, path, ""); resp.StatusCode != 404 {
			t.Errorf("GET %s: %s: %s; want 404", path, resp.Status, body)
		}
	}
	if resp, _ := f.do(t, http.MethodGet, "/credentials", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /credentials: %s; want 405", resp.Status)
	}
	huge := strings.Repeat("x", MaxBodyBytes+1)
	// Refused by the proxy itself, before anything is sent on.
	if resp, body := f.do(t, http.MethodPost, "/api/queue/v1/task/"+f.taskID+"/runs/0/artifacts/public/huge", huge); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "Request body over") {
		t.Errorf("a body over MaxBodyBytes: %s %.200s; want the proxy's 413", resp.Status, body)
	}
	if resp, _ := f.do(t, http.MethodPut, "/credentials", "not json"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT /credentials with a bad body: %s; want 400", resp.Status)
	}
}

func TestProxyCredentialsReplaced(t *testing.T) {
	f := newFixture(t, nil, "")
	path := "/api/queue/v1/task/" + f.taskID + "/runs/0/artifacts/private/x"
	// Bad credentials through PUT /credentials: the queue refuses them.
	bad, _ := json.Marshal(map[string]string{"clientId": f.claim.Credentials.ClientID, "accessToken": "wrong", "certificate": f.claim.Credentials.Certificate})
	if resp, body := f.do(t, http.MethodPut, "/credentials", string(bad)); resp.StatusCode != 200 {
		t.Fatalf("PUT /credentials: %s: %s", resp.Status, body)
	}
	if resp, body := f.do(t, http.MethodGet, path, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET with replaced (bad) credentials: %s: %s; want 401", resp.Status, body)
	}
	// The agent's reclaim path: good credentials again.
	f.proxy.SetCredentials(tcclient.Credentials{ClientID: f.claim.Credentials.ClientID, AccessToken: f.claim.Credentials.AccessToken, Certificate: f.claim.Credentials.Certificate})
	if resp, body := f.do(t, http.MethodGet, path, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with restored credentials: %s: %s; want 403 (signed, but no scope for private/x)", resp.Status, body)
	}
}

func TestProxyBewit(t *testing.T) {
	f := newFixture(t, []string{"queue:get-artifact:private/ok/*"}, "")
	f.createArtifact(t, "private/ok/b.txt", "bewit content")
	target := f.stack.RootURL + "/api/queue/v1/task/" + f.taskID + "/runs/0/artifacts/private/ok/b.txt"
	resp, body := f.do(t, http.MethodPost, "/bewit", target+"\n")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "bewit=") || strings.TrimSpace(body) != loc {
		t.Fatalf("POST /bewit: %s Location %q body %q", resp.Status, loc, body)
	}
	got, err := http.Get(loc) // no credentials: the bewit is enough
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	b, _ := io.ReadAll(got.Body)
	if got.StatusCode != 200 || string(b) != "bewit content" {
		t.Errorf("GET the bewit URL: %s %q", got.Status, b)
	}
}

func TestProxyRetriesServerErrors(t *testing.T) {
	// A front that fails the first attempt of each request with a 503,
	// as a deployment's load balancer may.
	var attempts, failed atomic.Int32
	var target atomic.Pointer[url.URL]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1)%2 == 1 {
			failed.Add(1)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	f := newFixture(t, nil, front.URL)
	u, _ := url.Parse(f.stack.RootURL)
	target.Store(u)

	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := `{"storageType": "reference", "contentType": "text/plain", "url": "https://example.com/x", "expires": "` + exp + `"}`
	resp, answer := f.do(t, http.MethodPost, "/api/queue/v1/task/"+f.taskID+"/runs/0/artifacts/public/ref", body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST through a flaky front: %s: %s", resp.Status, answer)
	}
	if failed.Load() != 1 || attempts.Load() != 2 {
		t.Errorf("front saw %d attempts (%d failed), want 2 (1 failed): the retry must be signed afresh and succeed", attempts.Load(), failed.Load())
	}
	if _, err := f.root.GetArtifact(f.taskID, "0", "public/ref"); err != nil {
		t.Errorf("reference artifact created through retries: %v", err)
	}
}

// TestProxyAnswersOnlyWithItsSecret sends requests that lack the run's
// secret, or carry another, to a proxy whose deployment counts what
// reaches it: every one is refused and nothing is forwarded or signed.
func TestProxyAnswersOnlyWithItsSecret(t *testing.T) {
	var upstream atomic.Int64
	deployment := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer deployment.Close()
	f := newFixture(t, nil, deployment.URL)
	base, secret, ok := strings.Cut(strings.TrimPrefix(f.proxy.URL(), "http://"), "/")
	if !ok || len(secret) != 32 || base != f.proxy.Addr() {
		t.Fatalf("proxy URL %q: want http://<addr>/<32 hex characters>", f.proxy.URL())
	}
	other, err := Start(Config{RootURL: deployment.URL, Credentials: tcclient.Credentials{ClientID: "c", AccessToken: "t"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, otherSecret, _ := strings.Cut(strings.TrimPrefix(other.URL(), "http://"), "/")
	if otherSecret == secret {
		t.Fatal("two proxies drew the same secret")
	}
	for _, path := range []string{
		"/api/queue/v1/task/" + f.taskID,
		"/queue/v1/task/" + f.taskID,
		"/bewit",
		"/credentials",
		"/" + otherSecret + "/api/queue/v1/task/" + f.taskID,
		"/" + secret + "x/api/queue/v1/task/" + f.taskID,
		"/" + secret[:31] + "/api/queue/v1/task/" + f.taskID,
		"/x/" + secret + "/api/queue/v1/task/" + f.taskID,
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
			req, _ := http.NewRequest(method, "http://"+base+path, strings.NewReader(`{}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "TASKCLUSTER_PROXY_URL") {
				t.Errorf("%s %s: %s %q, want 403 naming TASKCLUSTER_PROXY_URL", method, path, resp.Status, body)
			}
		}
	}
	if n := upstream.Load(); n != 0 {
		t.Errorf("%d requests without the secret reached the deployment", n)
	}
	resp, body := f.do(t, http.MethodGet, "/api/queue/v1/task/"+f.taskID, "")
	if resp.StatusCode != 200 || upstream.Load() != 1 {
		t.Errorf("with the secret: %s %q, %d forwarded; want 200 and 1", resp.Status, body, upstream.Load())
	}
}
