package mounts

// Reaching into a task directory without following links. The task owns
// its directory: any directory in it can become a symbolic link (or, on
// Windows, a junction, which needs no privilege) to anywhere, even between
// two steps of the agent, which runs as root. So the agent reaches a cache
// in a task directory only through directory handles (os.Root), opened one
// element at a time, each checked to be the plain directory that Lstat
// sees under that name; it moves caches with platform.RenameAt between two
// open directories and removes them with Root.RemoveAll (or entry by entry
// with platform.RemoveAt). A link in the path is refused, and whatever the
// task swaps in meanwhile, no operation leaves the task directory
// (os.Root's guarantee).
// docs/payload.md ("Mounts and caches") states what is refused.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/labrunner/labrunner/platform"
)

// notPlainDirError is a path element that is a link, a junction or other
// reparse point, or a file, where the agent needs a directory.
type notPlainDirError struct{ path string }

func (e *notPlainDirError) Error() string {
	return e.path + " is not a plain directory (a link, a junction or a file took its place); the agent follows no link in a task directory"
}

// openPlainDir opens the directory rel (OS separators, "." for root
// itself) below root, one element at a time; each must be a plain
// directory. With create, missing elements are made (0755). The caller
// closes the result.
func openPlainDir(root *os.Root, rel string, create bool) (*os.Root, error) {
	cur, err := root.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	rel = filepath.Clean(rel)
	if rel == "." {
		return cur, nil
	}
	walked := ""
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		walked = filepath.Join(walked, el)
		if create {
			if err := cur.Mkdir(el, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				cur.Close()
				return nil, fmt.Errorf("create %s: %w", walked, err)
			}
		}
		next, err := openChild(cur, el)
		cur.Close()
		var npd *notPlainDirError
		if errors.As(err, &npd) {
			npd.path = walked
			return nil, npd
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", walked, err)
		}
		cur = next
	}
	return cur, nil
}

// openChild opens the directory name in parent and checks that what was
// opened is the plain directory under that name: a link swapped in
// before or after the open is caught either by Lstat or by SameFile.
func openChild(parent *os.Root, name string) (*os.Root, error) {
	if err := plainDir(parent, name); err != nil {
		return nil, err
	}
	child, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	opened, err := child.Stat(".")
	if err == nil {
		var named fs.FileInfo
		named, err = parent.Lstat(name)
		if err == nil && (named.Mode().Type() != fs.ModeDir || !os.SameFile(named, opened)) {
			err = &notPlainDirError{name}
		}
	}
	if err != nil {
		child.Close()
		return nil, err
	}
	return child, nil
}

// plainDir reports an error unless name in dir is a directory that is not
// a link or reparse point.
func plainDir(dir *os.Root, name string) error {
	info, err := dir.Lstat(name)
	if err != nil {
		return err
	}
	if info.Mode().Type() != fs.ModeDir {
		return &notPlainDirError{name}
	}
	return nil
}

// splitRel splits a path relative to the task directory into its parent
// ("." at the top) and last element.
func splitRel(rel string) (dir, base string) {
	rel = filepath.Clean(rel)
	return filepath.Dir(rel), filepath.Base(rel)
}

// removeInTask removes rel (a cache) from the task directory taskDir
// without following a link on the way or inside; a link in rel's parents
// is refused and leaves rel where it is (the task directory's own removal
// takes it).
func removeInTask(taskDir, rel string) error {
	root, err := os.OpenRoot(taskDir)
	if err != nil {
		return err
	}
	defer root.Close()
	dir, base := splitRel(rel)
	parent, err := openPlainDir(root, dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	return removeAllAt(parent, base)
}

// removeAllAt is Root.RemoveAll of name (a path in dir), with a second
// way, entry by entry and deepest first, through platform.RemoveAt: Wine
// lacks the call os.Root removes with on Windows, and one entry that
// cannot go (in use by a surviving process, say) does not keep the rest.
// Neither way follows a link.
func removeAllAt(dir *os.Root, name string) error {
	err := dir.RemoveAll(name)
	if err == nil {
		return nil
	}
	paths := []string{filepath.ToSlash(name)}
	if plainDir(dir, name) == nil {
		paths = nil
		_ = fs.WalkDir(dir.FS(), filepath.ToSlash(name), func(p string, _ fs.DirEntry, _ error) error {
			paths = append(paths, p)
			return nil
		})
	}
	for i := len(paths) - 1; i >= 0; i-- {
		_ = removeAt(dir, filepath.FromSlash(paths[i]))
	}
	if _, serr := dir.Lstat(name); errors.Is(serr, fs.ErrNotExist) {
		return nil
	}
	return err
}

// removeAt removes the file, link or empty directory name (a path in
// dir) through its parent's handle.
func removeAt(dir *os.Root, name string) error {
	parent, err := dir.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	return platform.RemoveAt(parent, filepath.Base(name))
}
