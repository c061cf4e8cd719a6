//go:build windows

package platform

// taskEnvInherited are the variables Windows gives every process of a
// logged-on user (what CreateEnvironmentBlock builds, which
// generic-worker's multiuser engine uses: workers/generic-worker/process/
// multiuser_windows.go at v44.23.4): system and program locations, the
// processor, the user and profile, the time zone, and PowerShell's module
// path.
var taskEnvInherited = []string{
	"PATH", "PATHEXT", "SystemRoot", "SystemDrive", "windir", "ComSpec", "OS",
	"ProgramFiles", "ProgramFiles(x86)", "ProgramW6432",
	"CommonProgramFiles", "CommonProgramFiles(x86)", "CommonProgramW6432",
	"ProgramData", "ALLUSERSPROFILE", "PUBLIC", "DriverData",
	"NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE", "PROCESSOR_IDENTIFIER", "PROCESSOR_LEVEL", "PROCESSOR_REVISION",
	"USERPROFILE", "USERNAME", "USERDOMAIN", "COMPUTERNAME", "HOMEDRIVE", "HOMEPATH", "APPDATA", "LOCALAPPDATA",
	"PSModulePath", "TZ",
}

var taskEnvInheritedPrefixes []string

var taskTempEnv = []string{"TEMP", "TMP"}

var taskEnvDefaults = map[string]string{}
