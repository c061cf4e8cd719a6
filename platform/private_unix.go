//go:build unix

package platform

import (
	"fmt"
	"os"
)

// restrictToServiceAccount sets 0700 on a directory and removes the group
// and other bits of anything else (a file stays executable if it was). A
// directory of mode 0711 is left so: task users pass through it to their
// task directories (TaskUser.Own) but can list, read or write nothing in
// it.
func restrictToServiceAccount(path string, fi os.FileInfo) (string, error) {
	perm := fi.Mode().Perm()
	want := perm&^0o077 | PrivateFileMode
	if fi.IsDir() {
		want = PrivateDirMode
		if perm == PrivateDirMode|0o011 {
			return "", nil
		}
	}
	if perm == want {
		return "", nil
	}
	if err := os.Chmod(path, want); err != nil {
		return "", fmt.Errorf("chmod %04o: %w", want, err)
	}
	return fmt.Sprintf("mode %04o -> %04o", perm, want), nil
}
