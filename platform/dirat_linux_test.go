package platform

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRenameAtAcrossVolumesIsErrCrossDevice(t *testing.T) {
	base := testTempDir(t)
	shm, err := os.MkdirTemp("/dev/shm", "labrunner-platform-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(shm) })
	var a, b syscall.Stat_t
	if syscall.Stat(shm, &a) != nil || syscall.Stat(base, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the temporary directory's volume here")
	}
	d := openDirs(t, base, shm)
	if err := os.Mkdir(filepath.Join(base, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RenameAt(d[0], "c", d[1], "c"); !errors.Is(err, ErrCrossDevice) {
		t.Errorf("RenameAt across volumes = %v, want ErrCrossDevice", err)
	}
}
