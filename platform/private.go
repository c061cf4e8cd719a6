package platform

// The runner's own files (state, journal, machine token, control socket,
// task directories and logs) are for the service's account only: mode
// 0700/0600 on Unix, set explicitly so that the umask does not matter; on
// Windows a protected DACL granting SYSTEM, Administrators and the
// runner's own account, inherited by what is created inside.
// docs/operations.md ("File permissions") says which paths.

import (
	"fmt"
	"os"
	"path/filepath"
)

// Modes of the runner's own directories and files on Unix.
const (
	PrivateDirMode  os.FileMode = 0o700
	PrivateFileMode os.FileMode = 0o600
)

// MakePrivateDir creates dir (and missing parents) for the service's
// account only, or restricts it if it exists. repaired describes what had
// to change on an existing directory ("" if nothing).
func MakePrivateDir(dir string) (repaired string, err error) {
	if _, err := os.Lstat(dir); err != nil {
		if !os.IsNotExist(err) {
			return "", fmt.Errorf("private directory %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, PrivateDirMode); err != nil {
			return "", fmt.Errorf("create private directory %s: %w", dir, err)
		}
		// The umask may have narrowed the mode; on Windows the ACL is set
		// here.
		if _, err := RestrictToServiceAccount(dir); err != nil {
			return "", err
		}
		return "", nil
	}
	return RestrictToServiceAccount(dir)
}

// RestrictToServiceAccount restricts an existing file or directory to the
// service's account (see the file comment); repaired describes what
// changed ("" if it already was). Symbolic links are left alone, and a
// directory that looks shared (a filesystem root, or sticky like /tmp) is
// refused rather than locked.
func RestrictToServiceAccount(path string) (repaired string, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("restrict %s to the service account: %w", path, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return "", nil
	}
	if fi.IsDir() {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("restrict %s to the service account: %w", path, err)
		}
		if filepath.Dir(abs) == abs || fi.Mode()&os.ModeSticky != 0 {
			return "", fmt.Errorf("restrict %s to the service account: it is a shared directory (a filesystem root, or sticky like /tmp); give the runner a directory of its own", path)
		}
	}
	repaired, err = restrictToServiceAccount(path, fi)
	if err != nil {
		return "", fmt.Errorf("restrict %s to the service account: %w", path, err)
	}
	return repaired, nil
}

// PrepareTaskDir makes a run's task directory, the runner's like its other
// files; in per-task mode TaskUser.Own hands it to the task user once its
// mounts are in place.
func PrepareTaskDir(dir string) error {
	if _, err := MakePrivateDir(dir); err != nil {
		return fmt.Errorf("task directory: %w", err)
	}
	return nil
}
