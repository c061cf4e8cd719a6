//go:build windows

package platform

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// restrictToServiceAccount gives path a protected DACL (nothing inherited
// from its parent) granting full control to SYSTEM, Administrators and the
// account the runner runs as (SYSTEM for the service; another account when
// run from a console, which must not lock itself out). A directory's
// entries are inherited by what is created inside it.
func restrictToServiceAccount(path string, fi os.FileInfo) (string, error) {
	allowed, err := serviceAccountSIDs()
	if err != nil {
		return "", err
	}
	if ok, err := daclRestricted(path, allowed); err != nil {
		return "", err
	} else if ok {
		return "", nil
	}
	inherit := uint32(windows.NO_INHERITANCE)
	if fi.IsDir() {
		inherit = windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT
	}
	entries := make([]windows.EXPLICIT_ACCESS, 0, len(allowed))
	for _, sid := range allowed {
		entries = append(entries, windows.EXPLICIT_ACCESS{
			AccessPermissions: windows.GENERIC_ALL,
			AccessMode:        windows.SET_ACCESS,
			Inheritance:       inherit,
			Trustee: windows.TRUSTEE{
				TrusteeForm:  windows.TRUSTEE_IS_SID,
				TrusteeType:  windows.TRUSTEE_IS_UNKNOWN,
				TrusteeValue: windows.TrusteeValueFromSID(sid),
			},
		})
	}
	acl, err := windows.ACLFromEntries(entries, nil)
	if err != nil {
		return "", fmt.Errorf("build ACL: %w", err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
	if err != nil {
		return "", fmt.Errorf("SetNamedSecurityInfo: %w", err)
	}
	return "ACL -> SYSTEM, Administrators and the runner's account only (protected)", nil
}

// serviceAccountSIDs are SYSTEM, Administrators and the process's own
// user, without duplicates.
func serviceAccountSIDs() ([]*windows.SID, error) {
	system, err := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	if err != nil {
		return nil, fmt.Errorf("SID of SYSTEM: %w", err)
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return nil, fmt.Errorf("SID of Administrators: %w", err)
	}
	out := []*windows.SID{system, admins}
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("the runner's account: %w", err)
	}
	if !user.User.Sid.Equals(system) && !user.User.Sid.Equals(admins) {
		out = append(out, user.User.Sid)
	}
	return out, nil
}

// daclRestricted says whether path's DACL is already protected and grants
// only to allowed.
func daclRestricted(path string, allowed []*windows.SID) (bool, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return false, fmt.Errorf("GetNamedSecurityInfo: %w", err)
	}
	control, _, err := sd.Control()
	if err != nil {
		return false, fmt.Errorf("security descriptor control: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil || control&windows.SE_DACL_PROTECTED == 0 {
		// No DACL at all means everyone has access.
		return false, nil
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return false, fmt.Errorf("GetAce %d: %w", i, err)
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE {
			continue // a deny ACE grants nothing
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		known := false
		for _, a := range allowed {
			if sid.Equals(a) {
				known = true
				break
			}
		}
		if !known {
			return false, nil
		}
	}
	return true, nil
}
