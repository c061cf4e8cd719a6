package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The runner's unit gets Delegate=yes from a drop-in beside it (kardianos
// writes no such line), so that the runner may make a cgroup per task
// below its own.
func TestServiceDelegateDropIn(t *testing.T) {
	dir := testTempDir(t)
	if err := writeDelegateDropIn(dir, "labrunner"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "labrunner.service.d", "labrunner-delegate.conf"))
	if err != nil || !strings.Contains(string(b), "\n[Service]\nDelegate=yes\n") {
		t.Errorf("drop-in: %q, %v; want a [Service] section with Delegate=yes", b, err)
	}
}
