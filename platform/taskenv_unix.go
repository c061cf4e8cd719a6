//go:build unix

package platform

// taskEnvInherited are the essentials of a Unix process: where programs
// are, who and where the user is, the shell, the time zone and the
// locale. generic-worker's multiuser engine gives HOME, PATH and USER
// (workers/generic-worker/multiuser_posix.go at v44.23.4).
var taskEnvInherited = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TZ", "LANG", "LANGUAGE"}

// taskEnvInheritedPrefixes: the locale categories (LC_ALL, LC_CTYPE, ...).
var taskEnvInheritedPrefixes = []string{"LC_"}

var taskTempEnv = []string{"TMPDIR"}

// taskEnvDefaults: generic-worker's PATH for tasks.
var taskEnvDefaults = map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
