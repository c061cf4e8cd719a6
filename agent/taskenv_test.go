package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

func envMap(t *testing.T, env []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("entry %q is not NAME=value", kv)
		}
		if _, dup := m[name]; dup {
			t.Fatalf("variable %s appears twice in %q", name, env)
		}
		m[name] = value
	}
	return m
}

func TestTaskEnv(t *testing.T) {
	base := []string{
		"PATH=/usr/bin:/bin",
		"TASKCLUSTER_ACCESS_TOKEN=secret-token",
		"TASKCLUSTER_CLIENT_ID=worker/agent",
		"TASKCLUSTER_CERTIFICATE={\"cert\":1}",
		"LABRUNNER_PROVISIONER_TOKEN=secret-prov",
		"SECRET_X=secret-x",
		"TASK_ID=stale",
		"EQUALS=a=b",
	}
	payloadEnv := map[string]string{
		"PATH":                  "/opt/tool/bin:/usr/bin",
		"FOO":                   "bar baz",
		"EQUALS":                "c=d",
		"TASK_ID":               "payload-tries-to-override",
		"RUN_ID":                "99",
		"TASKCLUSTER_ROOT_URL":  "https://evil.example.com",
		"TASKCLUSTER_PROXY_URL": "https://evil.example.com",
		"EMPTY":                 "",
	}
	env := TaskEnv(base, payloadEnv, TaskEnvRun{
		TaskID: "fN1SbArXTPSVFNUvaOlinQ", RunID: 2, RootURL: "https://tc.example.com",
		TaskDir: "/tasks/task_1", TempDir: "/tasks/task_1/.tmp", WorkerLocation: `{"cloud":"lab"}`, ProxyURL: "http://127.0.0.1:41234",
	})
	if !slices.IsSorted(env) {
		t.Errorf("env not sorted: %q", env)
	}
	m := envMap(t, env)
	want := map[string]string{
		"PATH":                        "/opt/tool/bin:/usr/bin",
		"FOO":                         "bar baz",
		"EMPTY":                       "",
		"EQUALS":                      "c=d",
		"TASK_ID":                     "fN1SbArXTPSVFNUvaOlinQ",
		"RUN_ID":                      "2",
		"TASKCLUSTER_ROOT_URL":        "https://tc.example.com",
		"TASK_WORKDIR":                "/tasks/task_1",
		"TASKCLUSTER_WORKER_LOCATION": `{"cloud":"lab"}`,
		"TASKCLUSTER_PROXY_URL":       "http://127.0.0.1:41234",
	}
	for _, name := range platform.TaskTempEnv() {
		want[name] = "/tasks/task_1/.tmp"
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for _, kv := range env {
		if strings.Contains(kv, "secret") {
			t.Errorf("a secret of the agent's environment leaked in %q", kv)
		}
	}
	if len(m) != len(want) {
		t.Errorf("unexpected extra variables: %q", env)
	}
}

func TestTaskEnvDefaultsWhenTheServiceHasNone(t *testing.T) {
	m := envMap(t, TaskEnv(nil, nil, TaskEnvRun{}))
	for k, v := range platform.TaskEnvDefaults() {
		if m[k] != v {
			t.Errorf("%s = %q with an empty runner environment, want the default %q", k, m[k], v)
		}
	}
}

func TestTaskEnvOptionalVariables(t *testing.T) {
	m := envMap(t, TaskEnv(nil, nil, TaskEnvRun{TaskID: "t", RunID: 0, RootURL: "http://localhost"}))
	if _, ok := m["TASK_WORKDIR"]; ok {
		t.Error("TASK_WORKDIR set without a task directory")
	}
	if _, ok := m["TASKCLUSTER_WORKER_LOCATION"]; ok {
		t.Error("TASKCLUSTER_WORKER_LOCATION set without a location")
	}
	if _, ok := m["TASKCLUSTER_PROXY_URL"]; ok {
		t.Error("TASKCLUSTER_PROXY_URL set without a proxy")
	}
	if m["RUN_ID"] != "0" || m["TASK_ID"] != "t" {
		t.Errorf("identity wrong: %v", m)
	}
}

func TestTaskEnvPayloadCanRemoveNothingButCanBlank(t *testing.T) {
	// A payload can set an inherited variable to empty but not delete it,
	// as in generic-worker.
	m := envMap(t, TaskEnv([]string{"PATH=/bin"}, map[string]string{"PATH": ""}, TaskEnvRun{}))
	if v, ok := m["PATH"]; !ok || v != "" {
		t.Errorf("PATH = %q (present %v), want empty and present", v, ok)
	}
}
