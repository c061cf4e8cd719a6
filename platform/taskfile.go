package platform

// The runner reads some of a task's files after the task ran (artifacts,
// a Buildbot build's properties), with its own account's rights, which are
// more than the task's. These helpers keep such a read to what the task
// itself could have read; the path checks are os.Root's (agent/artifactopen.go).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// TaskFileOpenFlag is added to the flags a task's file is opened with so
// that opening a named pipe cannot block (O_NONBLOCK on Unix; nothing on
// Windows, where a task cannot make a pipe in its directory).
const TaskFileOpenFlag = taskFileOpenFlag

// ForeignToTask reports whether file, a regular file in a task directory
// whose own information is dir, belongs to another account than the task's
// and is not readable by everyone: a file the task could not have read,
// such as a hard link it made to a root-only file (macOS lets any account
// link any file it can reach; Linux does not when fs.protected_hardlinks
// is 1, its usual setting). The task directory's owner is the task's
// account (TaskUser.Own); when it is the runner's own account, the task
// ran as that account and nothing is foreign to it.
// Always false on Windows, where TaskUser.Own grants the account access
// through the directory's DACL and leaves the runner's account its owner.
func ForeignToTask(file, dir fs.FileInfo) bool { return foreignToTask(file, dir) }

// readTaskFile reads name, a regular file in the task directory root that
// the task wrote, as the agent reads artifacts (agent/artifactopen.go):
// through root, so no link leads out; without blocking on a pipe; only a
// regular file of at most max bytes that the task could read.
func readTaskFile(root *os.Root, name string, max int64) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|TaskFileOpenFlag, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	dir, err := root.Stat(".")
	if err != nil {
		return nil, err
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file (%s)", name, info.Mode().Type())
	case ForeignToTask(info, dir):
		return nil, fmt.Errorf("%s belongs to another account than the task's", name)
	case info.Size() > max:
		return nil, fmt.Errorf("%s is %d bytes, more than %d", name, info.Size(), max)
	}
	return io.ReadAll(io.NewSectionReader(f, 0, info.Size()))
}

// writeTaskFile writes a new file name in the task directory root, with
// mode perm: whatever the task left under that name (a link, a hard link
// to another file) is removed first, and the file is created exclusively,
// so the write cannot land anywhere else.
func writeTaskFile(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Close())
}
