//go:build windows

package platform

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"
)

// On Windows the DACL written with SetNamedSecurityInfo is read back
// (protected, only the allowed SIDs) and a second call finds nothing to
// repair. Wine accepts the calls but does not keep file DACLs (it answers
// with a DACL of its own making), so under Wine only the calls are
// checked. Whether Windows then denies another account is not tested.
func TestRestrictToServiceAccountSetsProtectedDACL(t *testing.T) {
	dir := filepath.Join(testTempDir(t), "state")
	if _, err := MakePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "runner-state.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RestrictToServiceAccount(file); err != nil {
		t.Fatal(err)
	}
	if underWine() {
		t.Skip("Wine does not keep file DACLs; SetNamedSecurityInfo was accepted, the result cannot be read back")
	}
	allowed, err := serviceAccountSIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, file} {
		sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		control, _, _ := sd.Control()
		if control&windows.SE_DACL_PROTECTED == 0 {
			t.Errorf("%s: DACL not protected (control %#x): it inherits its parent's entries", p, control)
		}
		dacl, _, err := sd.DACL()
		if err != nil || dacl == nil {
			t.Fatalf("%s: no DACL (%v): everyone has access", p, err)
		}
		if dacl.AceCount == 0 {
			t.Errorf("%s: empty DACL", p)
		}
		ok, err := daclRestricted(p, allowed)
		if err != nil || !ok {
			t.Errorf("%s: DACL grants others than SYSTEM, Administrators and the runner (%v): %s", p, err, sd)
		}
	}
	if repaired, err := RestrictToServiceAccount(dir); err != nil || repaired != "" {
		t.Errorf("second RestrictToServiceAccount = %q, %v; want nothing to repair", repaired, err)
	}
}
