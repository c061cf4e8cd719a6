//go:build unix

package agent

import "strings"

// The documented task environment on Unix (docs/payload.md, "Environment").
var (
	documentedEnv     = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TZ", "LANG", "LANGUAGE"}
	documentedTempEnv = []string{"TMPDIR"}
	// osDropsEmpty: an empty value is kept on Unix.
	osDropsEmpty = false

	parentEssentials = map[string]string{"LANG": "C.UTF-8", "LC_MESSAGES": "C", "TZ": "UTC", "HOME": "/home/runner-test"}
	dumpEnvCommand   = [][]string{{"/usr/bin/env"}}
	dumpEnvStep      = []string{"/usr/bin/env"}
)

func documentedInherited(name string) bool {
	for _, n := range documentedEnv {
		if name == n {
			return true
		}
	}
	return strings.HasPrefix(name, "LC_")
}

func sameEnvValue(_, got, want string) bool { return got == want }

// osAddedVar: env(1) run directly adds nothing.
func osAddedVar(string) bool { return false }
