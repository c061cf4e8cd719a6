package platform

import (
	"fmt"
	"os/exec"
)

// reboot asks systemd for an orderly reboot, and shutdown(8) where systemd
// is not PID 1 (containers, SysV-init machines).
func reboot(reason string) error {
	if out, err := exec.Command("systemctl", "reboot", "--message="+reason).CombinedOutput(); err == nil {
		return nil
	} else if out2, err2 := exec.Command("/sbin/shutdown", "-r", "now", reason).CombinedOutput(); err2 != nil {
		return fmt.Errorf("reboot: systemctl reboot: %v (%s); /sbin/shutdown -r now: %w (%s)", err, out, err2, out2)
	}
	return nil
}
