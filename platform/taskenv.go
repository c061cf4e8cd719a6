package platform

// The OS part of a task's environment: which of the runner's variables a
// task inherits (an allow-list per OS, so that a secret the service was
// started with never reaches a task), which variables name the temporary
// directory, and what a task gets when the runner's environment lacks an
// essential. docs/payload.md ("Environment") lists the result per OS.

import "strings"

// TaskEnvInherited says whether the runner's variable name is an OS
// essential that tasks inherit; everything else the runner was started
// with stays with the runner.
func TaskEnvInherited(name string) bool {
	key := EnvKey(name)
	for _, p := range taskEnvInheritedPrefixes {
		if strings.HasPrefix(key, EnvKey(p)) {
			return true
		}
	}
	for _, n := range taskEnvInherited {
		if key == EnvKey(n) {
			return true
		}
	}
	return false
}

// TaskTempEnv are the variables that name the temporary directory on this
// OS; a task gets each set to its own temporary directory.
func TaskTempEnv() []string { return taskTempEnv }

// TaskEnvDefaults are the values a task gets for essentials missing from
// the runner's environment (a service manager may start the runner with
// almost none).
func TaskEnvDefaults() map[string]string {
	out := make(map[string]string, len(taskEnvDefaults))
	for k, v := range taskEnvDefaults {
		out[k] = v
	}
	return out
}
