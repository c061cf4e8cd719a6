package agent

// The task environment, explicit rather than inherited: the OS essentials
// of the runner's environment (platform.TaskEnvInherited, an allow-list
// per OS), the run's own temporary directory, then the payload's env, then
// the run's identity, which the payload cannot override. Nothing else the
// runner was started with (its provisioner token, Taskcluster
// credentials, anything an operator exported) reaches a task.
// docs/payload.md ("Environment") lists the result and where it differs
// from generic-worker.

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/labrunner/labrunner/platform"
)

// taskTempDirName is the run's temporary directory inside its task
// directory.
const taskTempDirName = ".tmp"

// taskTempDir is the temporary directory of the run in taskDir.
func taskTempDir(taskDir string) string { return filepath.Join(taskDir, taskTempDirName) }

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
	// TempDir becomes the OS's temporary directory variables (TMPDIR;
	// TEMP and TMP on Windows).
	TempDir string
	// WorkerLocation, when set, becomes TASKCLUSTER_WORKER_LOCATION.
	WorkerLocation string
	// ProxyURL, when set, becomes TASKCLUSTER_PROXY_URL (the task's
	// taskcluster-proxy, features.taskclusterProxy).
	ProxyURL string
}

// TaskEnv builds a task command's environment ("NAME=value" entries, sorted)
// from the OS essentials of base (normally os.Environ()), the payload's env
// and the run.
func TaskEnv(base []string, payloadEnv map[string]string, run TaskEnvRun) []string {
	type entry struct{ name, value string }
	vars := map[string]entry{} // keyed by platform.EnvKey
	set := func(name, value string) { vars[platform.EnvKey(name)] = entry{name, value} }
	for name, value := range platform.TaskEnvDefaults() {
		set(name, value)
	}
	for _, kv := range base {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || !platform.TaskEnvInherited(name) {
			// Windows keeps per-drive cwd entries like "=C:=C:\\"; they
			// are not variables a task sets.
			continue
		}
		set(name, value)
	}
	if run.TempDir != "" {
		for _, name := range platform.TaskTempEnv() {
			set(name, run.TempDir)
		}
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
	if run.ProxyURL != "" {
		set("TASKCLUSTER_PROXY_URL", run.ProxyURL)
	}
	env := make([]string, 0, len(vars))
	for _, e := range vars {
		env = append(env, e.name+"="+e.value)
	}
	slices.Sort(env)
	return env
}
