package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const serviceName = "labrunner"

// serviceOptions: systemd restarts the runner whatever way it exits; the
// runner stays up while quarantined, so this is no respawn loop.
func serviceOptions(string, []string) map[string]any {
	return map[string]any{"Restart": "always", "LimitNOFILE": 65536}
}

// systemdUnitDir is where kardianos writes the runner's unit.
const systemdUnitDir = "/etc/systemd/system"

// delegateDropIn gives the runner the cgroups below its own, where each
// task's processes are held and killed (docs/operations.md, "Task
// users"): kardianos's unit has no Delegate= line, so a drop-in adds it.
const delegateDropIn = "# Written by `runner service install`: one cgroup per task below the\n# runner's (docs/operations.md, Task users).\n[Service]\nDelegate=yes\n"

// delegateDropInPath is the drop-in of the unit name below dir.
func delegateDropInPath(dir, name string) string {
	return filepath.Join(dir, name+".service.d", "labrunner-delegate.conf")
}

// afterServiceInstall adds Delegate=yes to the unit, where systemd runs.
func afterServiceInstall(name string) error {
	if !systemdRuns() {
		return nil
	}
	if err := writeDelegateDropIn(systemdUnitDir, name); err != nil {
		return err
	}
	return systemdReload()
}

// writeDelegateDropIn writes the drop-in of the unit name below dir.
func writeDelegateDropIn(dir, name string) error {
	p := delegateDropInPath(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("systemd drop-in: %w", err)
	}
	if err := os.WriteFile(p, []byte(delegateDropIn), 0o644); err != nil {
		return fmt.Errorf("systemd drop-in: %w", err)
	}
	return nil
}

// afterServiceUninstall removes the drop-in with the unit.
func afterServiceUninstall(name string) error {
	p := delegateDropInPath(systemdUnitDir, name)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("systemd drop-in: %w", err)
	}
	_ = os.Remove(filepath.Dir(p)) // only if empty: an operator's own drop-ins stay
	if !systemdRuns() {
		return nil
	}
	return systemdReload()
}

// systemdRuns says whether systemd is the service manager (sd_booted).
func systemdRuns() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func systemdReload() error {
	if out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func serviceControl(string, string) (bool, error) { return false, nil }
