package agent

// How the runner reads a task's files after the task ran (artifacts, a
// Buildbot build's properties). The runner reads with its own account's
// rights (root, LocalSystem), the task wrote the directory, so every read
// is held to what the task itself could have read
// (docs/payload.md#what-the-runner-reads):
//
//	payload path ──checkArtifactPath (parse time)──▶ relative, inside the task directory
//	  ──os.Root(taskDir).OpenFile(O_RDONLY|O_NONBLOCK)──▶ no component leads out (a link
//	    is followed only while it stays inside and is relative; a junction's target is
//	    absolute, so never; os.Root refuses the rest)
//	  ──fstat of the opened file──▶ a regular file (not a pipe, socket, device or
//	    directory), that the task's account could read (platform.ForeignToTask)
//	  ──▶ read from that descriptor, never from the path again
//
// generic-worker v44 (workers/generic-worker/artifacts.go at v44.23.4) joins
// the payload path to the task directory and opens it as it is, following
// links anywhere; labrunner is stricter on purpose.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/labrunner/labrunner/platform"
)

// maxTaskDirDepth bounds the walk of a directory artifact: a task whose
// processes outlive it could otherwise swap a directory for a link to its
// parent while the runner walks.
const maxTaskDirDepth = 256

// checkArtifactPath explains why p, a payload artifact path, is not a path
// inside the task directory on this OS, or returns "".
func checkArtifactPath(p string) string {
	s := strings.ReplaceAll(p, `\`, "/")
	switch {
	case p == "":
		return `is empty; give a path relative to the task directory ("." for all of it)`
	case path.IsAbs(s) || filepath.VolumeName(p) != "" || hasDriveLetter(s):
		return fmt.Sprintf("%q is absolute; give a path relative to the task directory", p)
	}
	if c := path.Clean(s); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Sprintf("%q leaves the task directory; give a path inside it", p)
	}
	if !filepath.IsLocal(filepath.FromSlash(s)) {
		// Windows: a reserved name (NUL, COM1) or a colon (a stream).
		return fmt.Sprintf("%q is not a plain path inside the task directory on this OS (reserved device names such as NUL and colons are refused on Windows); rename the file", p)
	}
	return ""
}

// hasDriveLetter reports a Windows drive prefix ("C:"), refused on every OS
// so that a payload's validity does not depend on where it runs.
func hasDriveLetter(s string) bool {
	return len(s) >= 2 && s[1] == ':' && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

// artifactRel is the payload path as a path relative to the task
// directory, with this OS's separators.
func artifactRel(p string) string {
	return filepath.Clean(filepath.FromSlash(strings.ReplaceAll(p, `\`, "/")))
}

// taskFileError is a task file the runner will not read: Reason is an
// error artifact reason, Problem completes "File artifact '<path>' ...".
type taskFileError struct {
	Reason, Problem string
}

// Error is the problem.
func (e *taskFileError) Error() string { return e.Problem }

// openTaskFile opens rel, a regular file in the task directory, for the
// runner to read. Errors are *taskFileError.
func openTaskFile(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	f, info, err := openInTask(root, rel)
	if err != nil {
		return nil, nil, err
	}
	switch m := info.Mode(); {
	case m.IsDir():
		err = &taskFileError{ReasonInvalidResource, "exists as a directory, not a file, on the worker"}
	case !m.IsRegular():
		err = &taskFileError{ReasonInvalidResource, fmt.Sprintf("is a %s, not a regular file, on the worker; only regular files are uploaded", kindOf(m))}
	default:
		err = checkOwner(root, info)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// openTaskDir opens rel, a directory in the task directory, to list it.
func openTaskDir(root *os.Root, rel string) (*os.File, error) {
	f, info, err := openInTask(root, rel)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		_ = f.Close()
		return nil, &taskFileError{ReasonInvalidResource, "exists as a file, not a directory, on the worker"}
	}
	return f, nil
}

// openInTask opens rel through root without blocking and stats what it
// opened.
func openInTask(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|platform.TaskFileOpenFlag, 0)
	if err != nil {
		return nil, nil, openError(root, rel, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, &taskFileError{ReasonInvalidResource, fmt.Sprintf("could not be examined: %v", unwrapPathError(err))}
	}
	return f, info, nil
}

// openError explains why rel could not be opened: missing (as
// generic-worker says it), a link leading out of the task directory
// (os.Root's "path escapes from parent"), or a kind of file that cannot
// be opened (a socket).
func openError(root *os.Root, rel string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &taskFileError{ReasonFileMissing, "does not exist on the worker"}
	}
	const fix = "only links that stay inside the task directory, and are not absolute, are followed: copy what it points to into the task directory instead"
	info, lerr := root.Lstat(rel)
	switch {
	case lerr != nil:
		return &taskFileError{ReasonInvalidResource, fmt.Sprintf("cannot be reached inside the task directory (%v), a link in its path leads out of it; %s", unwrapPathError(lerr), fix)}
	case info.Mode()&fs.ModeSymlink != 0:
		return &taskFileError{ReasonInvalidResource, fmt.Sprintf("is a link that leads out of the task directory (%v); %s", unwrapPathError(err), fix)}
	case !info.Mode().IsRegular() && !info.IsDir():
		return &taskFileError{ReasonInvalidResource, fmt.Sprintf("is a %s, not a regular file, on the worker; only regular files are uploaded", kindOf(info.Mode()))}
	}
	return &taskFileError{ReasonInvalidResource, fmt.Sprintf("could not be opened: %v", unwrapPathError(err))}
}

// checkOwner refuses a file the task's account could not have read.
func checkOwner(root *os.Root, info fs.FileInfo) error {
	dir, err := root.Stat(".")
	if err != nil {
		return &taskFileError{ReasonInvalidResource, fmt.Sprintf("could not be examined: the task directory: %v", err)}
	}
	if platform.ForeignToTask(info, dir) {
		return &taskFileError{ReasonInvalidResource, "belongs to another account and is not readable by the task's (a hard link to someone else's file?); only what the task could read is uploaded"}
	}
	return nil
}

// unwrapPathError drops the PathError's path, which is the task's own.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// walkTaskDir calls file for every entry under dir (relative to root)
// that is not a directory, in lexical order, and fail for every directory
// that cannot be listed (dir itself included, with sub ""); sub is the
// entry's path below dir with / separators. Links are not descended into:
// one found in the tree goes to file, and is opened as any other file (a
// link to a file inside the task directory is uploaded, one leading out
// is not). fs.WalkDir over root.FS() would open directories without
// O_NONBLOCK.
func walkTaskDir(root *os.Root, dir string, file func(rel, sub string), fail func(rel, sub string, err error)) {
	walkTaskDirFrom(root, dir, "", 0, file, fail)
}

func walkTaskDirFrom(root *os.Root, dir, sub string, depth int, file func(string, string), fail func(string, string, error)) {
	if depth > maxTaskDirDepth {
		fail(dir, sub, &taskFileError{ReasonInvalidResource, fmt.Sprintf("is more than %d directories deep; not walked further", maxTaskDirDepth)})
		return
	}
	f, err := openTaskDir(root, dir)
	if err != nil {
		fail(dir, sub, err)
		return
	}
	entries, err := f.ReadDir(-1)
	_ = f.Close()
	if err != nil {
		fail(dir, sub, &taskFileError{ReasonFileMissing, fmt.Sprintf("could not be listed: %v", unwrapPathError(err))})
		return
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		rel, below := filepath.Join(dir, e.Name()), path.Join(sub, e.Name())
		if e.IsDir() {
			walkTaskDirFrom(root, rel, below, depth+1, file, fail)
			continue
		}
		file(rel, below)
	}
}
