//go:build unix

// Through the dev queue with the agent's unix test helpers (helpers_test.go);
// agent/tcproxy's own tests cover the proxy on every OS.

package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// taskHelperEnv makes the test binary act as a task command (TestMain).
const taskHelperEnv = "LABRUNNER_AGENT_TEST_TASK"

// runTaskHelper is a task command: mode "proxy" exercises the task's
// taskcluster-proxy once, "proxy-loop" keeps reading through it for 5 s.
// It prints what it sees and exits non-zero when the proxy misbehaves.
func runTaskHelper(mode string) int {
	base := os.Getenv("TASKCLUSTER_PROXY_URL")
	taskID, runID := os.Getenv("TASK_ID"), os.Getenv("RUN_ID")
	fmt.Printf("TASKCLUSTER_PROXY_URL=%s\n", base)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		fmt.Println("FAIL: no proxy on 127.0.0.1")
		return 1
	}
	run := base + "/api/queue/v1/task/" + taskID + "/runs/" + runID
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, url, body string) (int, string) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ok := true
	expect := func(what string, want, got int, body string) {
		fmt.Printf("%s: %d\n", what, got)
		if got != want {
			fmt.Printf("FAIL: %s answered %d, want %d: %s\n", what, got, want, body)
			ok = false
		}
	}
	create := func(name, content string) {
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		st, body := call(http.MethodPost, run+"/artifacts/"+name, `{"storageType": "s3", "contentType": "text/plain", "expires": "`+exp+`"}`)
		expect("createArtifact "+name, 200, st, body)
		var s3 struct {
			PutURL string `json:"putUrl"`
		}
		if json.Unmarshal([]byte(body), &s3) != nil || s3.PutURL == "" {
			ok = false
			return
		}
		req, _ := http.NewRequest(http.MethodPut, s3.PutURL, strings.NewReader(content))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			fmt.Printf("FAIL: upload %s: %v %v\n", name, err, resp)
			ok = false
			return
		}
		resp.Body.Close()
	}
	switch mode {
	case "proxy":
		st, body := call(http.MethodGet, base+"/api/queue/v1/task/"+taskID, "")
		expect("task", 200, st, body)
		create("public/from-task.txt", "made through the proxy")
		create("private/allowed/a.txt", "within the task's scopes")
		create("private/mine.txt", "outside the task's scopes")
		st, body = call(http.MethodGet, run+"/artifacts/private/allowed/a.txt", "")
		expect("getArtifact private/allowed/a.txt", 303, st, body)
		st, body = call(http.MethodGet, run+"/artifacts/private/mine.txt", "")
		expect("getArtifact private/mine.txt", 403, st, body)
	case "proxy-loop":
		create("private/allowed/b.txt", "read again and again")
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			st, body := call(http.MethodGet, run+"/artifacts/private/allowed/b.txt", "")
			expect("getArtifact private/allowed/b.txt", 303, st, body)
		}
	default:
		fmt.Printf("FAIL: unknown mode %q\n", mode)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}

// proxyPayload runs the test binary as a task helper with the proxy on.
func proxyPayload(mode string, maxRunTime int) map[string]any {
	return map[string]any{
		"command":    [][]string{{os.Args[0], "-test.run=^$"}},
		"env":        map[string]string{taskHelperEnv: mode},
		"maxRunTime": maxRunTime,
		"features":   map[string]any{"taskclusterProxy": true},
	}
}

func withScopes(scopes ...string) func(*tcqueue.TaskDefinitionRequest) {
	return func(d *tcqueue.TaskDefinitionRequest) { d.Scopes = scopes }
}

func TestTaskclusterProxyServesTheTask(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	id := e.createTask(proxyPayload("proxy", 60), withScopes("queue:get-artifact:private/allowed/*"))
	run := e.waitRun(id, 0)
	log := e.artifactContent(id, 0, BackingLogName)
	if run.State != "completed" {
		t.Fatalf("run resolved %s/%s, want completed; log:\n%s", run.State, run.ReasonResolved, log)
	}
	for _, want := range []string{"[taskcluster-proxy] Serving on http://127.0.0.1:", "getArtifact private/mine.txt: 403", "getArtifact private/allowed/a.txt: 303"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if got := e.artifactContent(id, 0, "public/from-task.txt"); got != "made through the proxy" {
		t.Errorf("artifact created through the proxy = %q", got)
	}
	// The proxy signed with the run's temporary credentials.
	creates := e.proxy.callsMatching(http.MethodPost, "/task/"+id+"/runs/0/artifacts/public/from-task.txt")
	if len(creates) != 1 || !strings.HasPrefix(creates[0].clientID, "task-client/"+id+"/0/") {
		t.Errorf("createArtifact calls %+v, want one signed by task-client/%s/0/…", creates, id)
	}
}

func TestTaskclusterProxyRenewedOnReclaim(t *testing.T) {
	// 2 s claims: the credentials the proxy started with expire while the
	// task keeps reading through it for 5 s.
	e := newEnv(t, devqueue.Config{ClaimTimeout: 2 * time.Second})
	e.startAgent(e.config())
	id := e.createTask(proxyPayload("proxy-loop", 60), withScopes("queue:get-artifact:private/allowed/*"))
	run := e.waitRun(id, 0)
	log := e.artifactContent(id, 0, BackingLogName)
	if run.State != "completed" {
		t.Fatalf("run resolved %s/%s, want completed; log:\n%s", run.State, run.ReasonResolved, log)
	}
	if !strings.Contains(log, "[taskcluster-proxy] Successfully refreshed taskcluster-proxy credentials: task-client/"+id+"/0/") {
		t.Errorf("log does not show the proxy's credentials refreshed:\n%s", log)
	}
	signers := map[string]bool{}
	for _, c := range e.proxy.callsMatching(http.MethodGet, "/task/"+id+"/runs/0/artifacts/private/allowed/b.txt") {
		signers[c.clientID] = true
	}
	if len(signers) < 2 {
		t.Errorf("the task's reads were signed by %d credential set(s), want the rotated ones too", len(signers))
	}
}

func TestTaskclusterProxyNeedsQueueCredentials(t *testing.T) {
	dir := testTempDir(t)
	a, err := New(Config{TasksDir: dir + "/tasks", Version: "test", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(proxyPayload("proxy", 60))
	run, err := NewLocalRun(raw, dir+"/artifacts")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res := a.RunOne(t.Context(), run, &log)
	if res.Resolution.State != StateException || res.Resolution.Reason != "malformed-payload" || !strings.Contains(log.String(), "payload.features.taskclusterProxy: this run has no Taskcluster credentials") {
		t.Fatalf("local run with the proxy: %+v; log:\n%s", res.Resolution, log.String())
	}
}
