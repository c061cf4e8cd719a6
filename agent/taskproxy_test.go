package agent

// Through the dev queue on every OS (the mounts tests' env, which runs
// under Wine too); the task is the test binary (taskhelper_test.go).

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

func TestTaskclusterProxyServesTheTask(t *testing.T) {
	e := newMountEnv(t)
	e.startAgent()
	run, log := e.run(proxyPayload("proxy", 60), []string{"queue:get-artifact:private/allowed/*"}, nil)
	if run.State != "completed" {
		t.Fatalf("run resolved %s/%s, want completed; log:\n%s", run.State, run.ReasonResolved, log)
	}
	for _, want := range []string{"[taskcluster-proxy] Serving on http://127.0.0.1:", "getArtifact private/mine.txt: 403", "getArtifact private/allowed/a.txt: 303", "task without the secret: 403"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The public log names the proxy's address, never its secret.
	if !regexp.MustCompile(`\[taskcluster-proxy\] Serving on http://127\.0\.0\.1:\d+ for `).MatchString(log) {
		t.Errorf("the proxy's log line shows more than its address:\n%s", log)
	}
	if got := string(e.artifact(e.lastTaskID, "public/from-task.txt")); got != "made through the proxy" {
		t.Errorf("artifact created through the proxy = %q", got)
	}
}

func TestTaskclusterProxyNeedsQueueCredentials(t *testing.T) {
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Version: "test", Logger: quietMountLogger()})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(proxyPayload("proxy", 60))
	run, err := NewLocalRun(raw, filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res := a.RunOne(t.Context(), run, &log)
	if res.Resolution.State != StateException || res.Resolution.Reason != "malformed-payload" || !strings.Contains(log.String(), "payload.features.taskclusterProxy: this run has no Taskcluster credentials") {
		t.Fatalf("local run with the proxy: %+v; log:\n%s", res.Resolution, log.String())
	}
}
