package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bbclient "github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/platform"
)

// silentLogger drops the logs of builds whose bridge is absent.
var silentLogger = slog.New(slog.DiscardHandler)

// parentSecrets are variables a runner may be started with; none may
// reach a task.
var parentSecrets = map[string]string{
	"LABRUNNER_PROVISIONER_TOKEN": "prov-token-7f3a",
	"SECRET_X":                    "secret-x-91c2",
	"TASKCLUSTER_ACCESS_TOKEN":    "tc-token-5d0e",
	"TASKCLUSTER_CLIENT_ID":       "worker/secret-client",
	"TASKCLUSTER_CERTIFICATE":     `{"secret":"cert-11aa"}`,
	"AWS_SECRET_ACCESS_KEY":       "aws-secret-3b3b",
}

// setParentEnv gives the test process (the agent's parent environment) the
// secrets plus the given essentials.
func setParentEnv(t *testing.T, essentials map[string]string) {
	for k, v := range parentSecrets {
		t.Setenv(k, v)
	}
	for k, v := range essentials {
		t.Setenv(k, v)
	}
}

// dumpedEnv parses the NAME=value lines a task's env dump wrote to its log.
func dumpedEnv(t *testing.T, log string) map[string]string {
	t.Helper()
	start := strings.Index(log, "Executing command 0")
	end := strings.Index(log, "Command 0 exited with code 0")
	if start < 0 || end < start {
		t.Fatalf("the env dump did not run to the end:\n%s", log)
	}
	out := map[string]string{}
	for _, line := range strings.Split(log[start:end], "\n")[1:] {
		line = strings.TrimRight(line, "\r")
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.HasPrefix(line, "[labrunner ") {
			continue
		}
		out[platform.EnvKey(name)] = value
	}
	return out
}

// checkTaskEnv asserts that the task saw exactly the documented variables:
// the essentials the parent had, its temporary directory, the payload's
// env and the run's variables, plus only what the OS itself adds.
func checkTaskEnv(t *testing.T, seen map[string]string, payloadEnv map[string]string, taskID string) {
	t.Helper()
	for k, v := range seen {
		for sk, sv := range parentSecrets {
			if strings.Contains(v, sv) || platform.EnvKey(k) == platform.EnvKey(sk) {
				t.Errorf("task saw %s=%s: the runner's %s leaked", k, v, sk)
			}
		}
	}
	want := map[string]string{}
	for _, kv := range os.Environ() {
		name, value, ok := strings.Cut(kv, "=")
		if ok && name != "" && documentedInherited(name) {
			want[platform.EnvKey(name)] = value
		}
	}
	for k, v := range payloadEnv {
		want[platform.EnvKey(k)] = v
	}
	want[platform.EnvKey("TASK_ID")] = taskID
	want[platform.EnvKey("RUN_ID")] = "0"
	workdir := seen[platform.EnvKey("TASK_WORKDIR")]
	if workdir == "" {
		t.Fatalf("TASK_WORKDIR not set: %v", seen)
	}
	want[platform.EnvKey("TASK_WORKDIR")] = workdir
	want[platform.EnvKey("TASKCLUSTER_ROOT_URL")] = ""
	for _, name := range documentedTempEnv {
		want[platform.EnvKey(name)] = filepath.Join(workdir, ".tmp")
	}
	for k, v := range want {
		got, ok := seen[k]
		if !ok && v == "" && osDropsEmpty {
			continue
		}
		if !ok || !sameEnvValue(k, got, v) {
			t.Errorf("task saw %s=%q (present %v), want %q", k, got, ok, v)
		}
	}
	var extra []string
	for k := range seen {
		if _, ok := want[k]; !ok && !osAddedVar(k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		t.Errorf("task saw variables outside the documented set: %v", extra)
	}
	if info, err := os.Stat(filepath.Join(workdir, ".tmp")); err != nil || !info.IsDir() {
		t.Errorf("the task's temporary directory is not there: %v", err)
	}
}

func TestTaskSeesOnlyDocumentedEnv(t *testing.T) {
	setParentEnv(t, parentEssentials)
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Version: "test", KeepTaskDirs: true})
	if err != nil {
		t.Fatal(err)
	}
	payloadEnv := map[string]string{"FROM_PAYLOAD": "p-value", "LANG_OVERRIDE_CHECK": "yes"}
	def, _ := json.Marshal(map[string]any{"command": dumpEnvCommand, "maxRunTime": 60, "env": payloadEnv})
	run, err := NewLocalRun(def, "")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if res := a.RunOne(context.Background(), run, &log); res.Resolution != Completed {
		t.Fatalf("env dump %s:\n%s", res.Resolution, log.String())
	}
	checkTaskEnv(t, dumpedEnv(t, log.String()), payloadEnv, run.TaskID())
}

func TestBuildbotBuildSeesOnlyDocumentedEnv(t *testing.T) {
	setParentEnv(t, parentEssentials)
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Version: "test", KeepTaskDirs: true, Logger: silentLogger})
	if err != nil {
		t.Fatal(err)
	}
	// No bridge answers: the build's reports fail at once, which does not
	// matter here.
	c, err := bbclient.New("http://127.0.0.1:1", bbclient.Options{RetryMax: 1, RetryWaitMin: 1, RetryWaitMax: 1, Logger: silentLogger})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewBBSource(BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", Logger: silentLogger})
	if err != nil {
		t.Fatal(err)
	}
	buildEnv := map[string]string{"FROM_BUILD": "b-value"}
	r, err := s.newRun(&bbclient.Build{BuildID: 7, BuildNumber: 3, BuilderName: "b", TaskID: "BuildTask",
		Steps: []bbclient.Step{{Command: dumpEnvStep}}, Env: buildEnv, MaxRunTime: 60})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	a.RunOne(context.Background(), r, &log)
	checkTaskEnv(t, dumpedEnv(t, log.String()), buildEnv, "BuildTask")
}
