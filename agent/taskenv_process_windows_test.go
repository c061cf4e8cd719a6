//go:build windows

package agent

import "strings"

// The documented task environment on Windows (docs/payload.md,
// "Environment").
var (
	documentedEnv = []string{
		"PATH", "PATHEXT", "SystemRoot", "SystemDrive", "windir", "ComSpec", "OS",
		"ProgramFiles", "ProgramFiles(x86)", "ProgramW6432",
		"CommonProgramFiles", "CommonProgramFiles(x86)", "CommonProgramW6432",
		"ProgramData", "ALLUSERSPROFILE", "PUBLIC", "DriverData",
		"NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE", "PROCESSOR_IDENTIFIER", "PROCESSOR_LEVEL", "PROCESSOR_REVISION",
		"USERPROFILE", "USERNAME", "USERDOMAIN", "COMPUTERNAME", "HOMEDRIVE", "HOMEPATH", "APPDATA", "LOCALAPPDATA",
		"PSModulePath", "TZ",
	}
	documentedTempEnv = []string{"TEMP", "TMP"}
	// osDropsEmpty: `set` does not list a variable whose value is empty.
	osDropsEmpty = true

	parentEssentials = map[string]string{"TZ": "UTC"}
	dumpEnvCommand   = []string{"set"}
	dumpEnvStep      = []string{"set"}
)

func documentedInherited(name string) bool {
	for _, n := range documentedEnv {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// sameEnvValue compares paths without regard to case, as Windows does.
func sameEnvValue(_, got, want string) bool { return strings.EqualFold(got, want) }

// osAddedVar: cmd.exe adds PROMPT to what it shows; Wine gives every
// process its WINE* variables.
func osAddedVar(name string) bool {
	return name == "PROMPT" || (underWine() && strings.HasPrefix(name, "WINE"))
}
