package platform

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

const serviceName = "org.labrunner.runner"

func serviceOptions(exe string, args []string) map[string]any {
	return map[string]any{
		"LaunchdConfig": string(LaunchdPlist(serviceName, exe, args)),
		"KeepAlive":     true,
		"RunAtLoad":     true,
		"LogDirectory":  LaunchdLogDir,
	}
}

// afterServiceInstall makes the log directory: launchd creates log files
// but not their directory. It is the runner's alone, as its other files.
func afterServiceInstall(string) error {
	if _, err := MakePrivateDir(LaunchdLogDir); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	return nil
}

// afterServiceUninstall: the plist goes with kardianos's uninstall.
func afterServiceUninstall(string) error { return nil }

// serviceControl uses launchctl bootstrap/bootout/kickstart: kardianos's
// load/unload fail with "Input/output error" on recent macOS when the job
// is already bootstrapped.
func serviceControl(action, name string) (bool, error) {
	plist := filepath.Join(LaunchDaemonsDir, name+".plist")
	var args []string
	switch action {
	case "start":
		args = []string{"bootstrap", "system", plist}
	case "stop":
		args = []string{"bootout", "system/" + name}
	case "restart":
		args = []string{"kickstart", "-k", "system/" + name}
	default:
		return false, nil
	}
	if out, err := exec.Command("/bin/launchctl", args...).CombinedOutput(); err != nil {
		return true, fmt.Errorf("launchctl %v: %w (%s)", args, err, out)
	}
	return true, nil
}
