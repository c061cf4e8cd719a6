package platform

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// Shutdown reason flags (winuser.h); x/sys does not name them.
const (
	shtdnReasonMajorOther  = 0x00000000
	shtdnReasonMinorOther  = 0x00000000
	shtdnReasonFlagPlanned = 0x80000000
)

// reboot enables SeShutdownPrivilege (held but disabled by default, even
// for LocalSystem) and asks for a planned restart with no delay, forcing
// applications that would otherwise block it.
func reboot(reason string) error {
	if err := EnablePrivilege(SeShutdownPrivilege); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	msg, err := windows.UTF16PtrFromString(reason)
	if err != nil {
		return fmt.Errorf("reboot: reason %q: %w", reason, err)
	}
	if err := windows.InitiateSystemShutdownEx(nil, msg, 0, true, true, shtdnReasonMajorOther|shtdnReasonMinorOther|shtdnReasonFlagPlanned); err != nil {
		return fmt.Errorf("reboot: InitiateSystemShutdownEx: %w", err)
	}
	return nil
}
