package platform

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// SeShutdownPrivilege is the privilege needed to restart the machine.
const SeShutdownPrivilege = "SeShutdownPrivilege"

// EnablePrivilege enables a privilege the process token holds; Windows
// keeps most privileges disabled until asked, and reports a privilege the
// token lacks as ERROR_NOT_ALL_ASSIGNED rather than as a failure.
func EnablePrivilege(name string) error {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return fmt.Errorf("enable %s: open process token: %w", name, err)
	}
	defer tok.Close()
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, windows.StringToUTF16Ptr(name), &luid); err != nil {
		return fmt.Errorf("enable %s: look up privilege: %w", name, err)
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
	// Called directly: the call succeeds even when nothing was enabled, and
	// only its last error (read on the same thread) tells.
	r1, _, e1 := procAdjustTokenPrivileges.Call(uintptr(tok), 0, uintptr(unsafe.Pointer(&tp)), unsafe.Sizeof(tp), 0, 0)
	if r1 == 0 {
		return fmt.Errorf("enable %s: adjust token privileges: %w", name, e1)
	}
	if e1 == windows.ERROR_NOT_ALL_ASSIGNED {
		return fmt.Errorf("enable %s: the process token does not hold it; run as LocalSystem or an administrator", name)
	}
	return nil
}

var procAdjustTokenPrivileges = windows.NewLazySystemDLL("advapi32.dll").NewProc("AdjustTokenPrivileges")

// PrivilegeEnabled reports whether the process token has the privilege
// enabled.
func PrivilegeEnabled(name string) (bool, error) {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_QUERY, &tok); err != nil {
		return false, fmt.Errorf("query %s: open process token: %w", name, err)
	}
	defer tok.Close()
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, windows.StringToUTF16Ptr(name), &luid); err != nil {
		return false, fmt.Errorf("query %s: look up privilege: %w", name, err)
	}
	var n uint32
	_ = windows.GetTokenInformation(tok, windows.TokenPrivileges, nil, 0, &n)
	if n == 0 {
		return false, fmt.Errorf("query %s: token privileges size unknown", name)
	}
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(tok, windows.TokenPrivileges, &buf[0], n, &n); err != nil {
		return false, fmt.Errorf("query %s: token privileges: %w", name, err)
	}
	tp := (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0]))
	for _, p := range tp.AllPrivileges() {
		if p.Luid == luid {
			return p.Attributes&windows.SE_PRIVILEGE_ENABLED != 0, nil
		}
	}
	return false, nil
}
