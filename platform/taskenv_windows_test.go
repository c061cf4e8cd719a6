//go:build windows

package platform

import "testing"

func TestTaskEnvInheritedIgnoresCaseOnWindows(t *testing.T) {
	for _, name := range []string{"Path", "SYSTEMROOT", "systemroot", "ComSpec", "ProgramFiles(x86)"} {
		if !TaskEnvInherited(name) {
			t.Errorf("%s is not inherited by tasks", name)
		}
	}
}
