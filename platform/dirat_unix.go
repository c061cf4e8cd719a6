//go:build unix

package platform

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// renameAt is renameat(2), which looks both names up in their directories
// and renames a link itself.
func renameAt(fromDir *os.File, fromName string, toDir *os.File, toName string) error {
	err := unix.Renameat(int(fromDir.Fd()), fromName, int(toDir.Fd()), toName)
	runtime.KeepAlive(fromDir)
	runtime.KeepAlive(toDir)
	if errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("%w: %w", ErrCrossDevice, err)
	}
	return err
}

// removeAt is unlinkat(2), with AT_REMOVEDIR for a directory.
func removeAt(dir *os.File, name string) error {
	defer runtime.KeepAlive(dir)
	fd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	flags := 0
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	return unix.Unlinkat(fd, name, flags)
}
