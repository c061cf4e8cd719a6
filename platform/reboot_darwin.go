package platform

import (
	"fmt"
	"os/exec"
)

// reboot uses shutdown(8): the runner is a root LaunchDaemon, and the
// AppleScript "restart" needs a GUI session and consent.
func reboot(reason string) error {
	if out, err := exec.Command("/sbin/shutdown", "-r", "now", reason).CombinedOutput(); err != nil {
		return fmt.Errorf("reboot: /sbin/shutdown -r now: %w (%s)", err, out)
	}
	return nil
}
