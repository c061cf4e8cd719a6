//go:build unix

package platform

import "testing"

func TestTaskEnvInheritsLocaleOnUnix(t *testing.T) {
	for _, name := range []string{"HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ"} {
		if !TaskEnvInherited(name) {
			t.Errorf("%s is not inherited by tasks", name)
		}
	}
	if TaskEnvInherited("Path") {
		t.Error("Path is inherited on Unix, where it is not PATH")
	}
}
