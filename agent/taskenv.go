package agent

// The task environment, as generic-worker's simple engine builds it
// (simple_docker.go EnvVars): the worker's own environment minus its
// credentials, then the payload's env, then the run's identity, which the
// payload cannot override.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/labrunner/labrunner/platform"
)

// agentSecretEnv are the agent's own variables that never reach a task.
// generic-worker drops only TASKCLUSTER_ACCESS_TOKEN; the client id and
// certificate go too, since without the token they only make a task's
// Taskcluster client send requests that fail instead of anonymous ones.
var agentSecretEnv = []string{"TASKCLUSTER_ACCESS_TOKEN", "TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_CERTIFICATE"}

// TaskEnvRun is the run-specific part of a task's environment.
type TaskEnvRun struct {
	// TaskID becomes TASK_ID.
	TaskID string
	// RunID becomes RUN_ID.
	RunID int
	// RootURL becomes TASKCLUSTER_ROOT_URL.
	RootURL string
	// TaskDir becomes TASK_WORKDIR (a labrunner addition; generic-worker
	// tasks find it as their starting directory).
	TaskDir string
	// WorkerLocation, when set, becomes TASKCLUSTER_WORKER_LOCATION.
	WorkerLocation string
}

// TaskEnv builds a task command's environment ("NAME=value" entries, sorted)
// from base (normally os.Environ()), the payload's env and the run.
func TaskEnv(base []string, payloadEnv map[string]string, run TaskEnvRun) []string {
	type entry struct{ name, value string }
	vars := map[string]entry{} // keyed by platform.EnvKey
	set := func(name, value string) { vars[platform.EnvKey(name)] = entry{name, value} }
	for _, kv := range base {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			// Windows keeps per-drive cwd entries like "=C:=C:\\"; skip them
			// rather than guess, as they are not variables a task sets.
			continue
		}
		set(name, value)
	}
	for _, name := range agentSecretEnv {
		delete(vars, platform.EnvKey(name))
	}
	for name, value := range payloadEnv {
		set(name, value)
	}
	set("TASK_ID", run.TaskID)
	set("RUN_ID", strconv.Itoa(run.RunID))
	set("TASKCLUSTER_ROOT_URL", run.RootURL)
	if run.TaskDir != "" {
		set("TASK_WORKDIR", run.TaskDir)
	}
	if run.WorkerLocation != "" {
		set("TASKCLUSTER_WORKER_LOCATION", run.WorkerLocation)
	}
	env := make([]string, 0, len(vars))
	for _, e := range vars {
		env = append(env, e.name+"="+e.value)
	}
	slices.Sort(env)
	return env
}
