package platform

// Changing entries of an open directory: the agent moves and removes
// writable caches in task directories, whose paths a task can change (a
// parent swapped for a link or a junction) while the agent works. Naming
// an entry by an open directory and a single element means no link in a
// path is ever followed; the element itself is moved or removed as it is,
// link or not.

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrCrossDevice is the error RenameAt wraps when the two directories are
// on different volumes and a rename cannot move the entry.
var ErrCrossDevice = errors.New("the directories are on different volumes")

// RenameAt moves the entry fromName of the open directory fromDir to
// toName in the open directory toDir. Both names are single path elements,
// and neither is followed if it is a link. toName must not exist.
func RenameAt(fromDir *os.File, fromName string, toDir *os.File, toName string) error {
	if err := errors.Join(checkElement(fromName), checkElement(toName)); err != nil {
		return fmt.Errorf("rename %q to %q: %w", fromName, toName, err)
	}
	if err := renameAt(fromDir, fromName, toDir, toName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", join(fromDir, fromName), join(toDir, toName), err)
	}
	return nil
}

// RemoveAt removes the entry name (a single path element) of the open
// directory dir: a file, a link (never what it points to) or an empty
// directory. A read-only file on Windows is removed too, as on Unix.
func RemoveAt(dir *os.File, name string) error {
	if err := checkElement(name); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	if err := removeAt(dir, name); err != nil {
		return fmt.Errorf("remove %s: %w", join(dir, name), err)
	}
	return nil
}

func checkElement(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
		return fmt.Errorf("%q is not a single path element", n)
	}
	return nil
}

func join(dir *os.File, name string) string { return dir.Name() + string(os.PathSeparator) + name }
