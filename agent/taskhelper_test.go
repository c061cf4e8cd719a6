package agent

// The test binary doubles as a task command (TestMain runs runTaskHelper
// when taskHelperEnv is set), so that tasks can make HTTP calls on every
// OS without curl.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// taskHelperEnv makes the test binary act as a task command (TestMain).
const taskHelperEnv = "LABRUNNER_AGENT_TEST_TASK"

// runTaskHelper is a task command: mode "proxy" exercises the task's
// taskcluster-proxy once, "proxy-loop" keeps reading through it for 5 s.
// It prints what it sees and exits non-zero when the proxy misbehaves.
func runTaskHelper(mode string) int {
	base := os.Getenv("TASKCLUSTER_PROXY_URL")
	taskID, runID := os.Getenv("TASK_ID"), os.Getenv("RUN_ID")
	// The URL carries the run's secret and the log is public: print the
	// address only.
	addr, secret, _ := strings.Cut(strings.TrimPrefix(base, "http://"), "/")
	fmt.Printf("TASKCLUSTER_PROXY_URL=http://%s/<secret of %d characters>\n", addr, len(secret))
	if !strings.HasPrefix(base, "http://127.0.0.1:") || len(secret) < 32 {
		fmt.Println("FAIL: no proxy on 127.0.0.1 with a secret path")
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
		st, body = call(http.MethodGet, "http://"+addr+"/api/queue/v1/task/"+taskID, "")
		expect("task without the secret", 403, st, body)
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
	var command any = [][]string{{os.Args[0]}}
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		command = []string{`"` + os.Args[0] + `"`}
	}
	return map[string]any{
		"command":    command,
		"env":        map[string]string{taskHelperEnv: mode},
		"maxRunTime": maxRunTime,
		"features":   map[string]any{"taskclusterProxy": true},
	}
}
