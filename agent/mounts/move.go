package mounts

// Moving a cache between the caches directory and a task directory is a
// rename when both are on one volume (the default layout); across volumes
// it is a copy and a removal, as generic-worker's RenameCrossDevice does.
// Both ends are open directories and single names (taskroot.go), so that
// no link the task made, in the path or in the cache, is followed.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/labrunner/labrunner/platform"
)

// moveIntoTask moves the idle cache dir of the caches directory to rel in
// the task directory taskDir, making rel's parents; an empty directory
// already at rel is replaced.
func moveIntoTask(cachesDir, dir, taskDir, rel string) error {
	caches, err := os.OpenRoot(cachesDir)
	if err != nil {
		return err
	}
	defer caches.Close()
	task, err := os.OpenRoot(taskDir)
	if err != nil {
		return err
	}
	defer task.Close()
	parentRel, base := splitRel(rel)
	parent, err := openPlainDir(task, parentRel, true)
	if err != nil {
		return err
	}
	defer parent.Close()
	return moveDirAt(caches, dir, parent, base)
}

// moveOutOfTask moves rel in the task directory taskDir to dir in the
// caches directory. rel and each of its parents must be plain
// directories.
func moveOutOfTask(taskDir, rel, cachesDir, dir string) error {
	task, err := os.OpenRoot(taskDir)
	if err != nil {
		return err
	}
	defer task.Close()
	caches, err := os.OpenRoot(cachesDir)
	if err != nil {
		return err
	}
	defer caches.Close()
	parentRel, base := splitRel(rel)
	parent, err := openPlainDir(task, parentRel, false)
	if err != nil {
		return err
	}
	defer parent.Close()
	err = moveDirAt(parent, base, caches, dir)
	var npd *notPlainDirError
	if errors.As(err, &npd) && npd.path == base {
		npd.path = rel
	}
	return err
}

// moveDirAt moves the directory fromName of from to toName of to; an
// empty directory at toName is replaced. fromName must be a plain
// directory, and what was renamed is checked to be one (the task may swap
// it for a link meanwhile: the link is then removed, never followed).
func moveDirAt(from *os.Root, fromName string, to *os.Root, toName string) error {
	if err := plainDir(from, fromName); err != nil {
		return err
	}
	if info, err := to.Lstat(toName); err == nil {
		if info.Mode().Type() != fs.ModeDir {
			return fmt.Errorf("move %s to %s: %s exists and is not a directory", fromName, toName, toName)
		}
		if err := removeAt(to, toName); err != nil {
			return fmt.Errorf("move %s to %s: %s exists and is not empty", fromName, toName, toName)
		}
	}
	err := renameAt(from, fromName, to, toName)
	if err == nil {
		if perr := plainDir(to, toName); perr != nil {
			rerr := removeAllAt(to, toName)
			return errors.Join(fmt.Errorf("move %s to %s: it changed meanwhile: %w", fromName, toName, perr), rerr)
		}
		return nil
	}
	if !errors.Is(err, platform.ErrCrossDevice) {
		return err
	}
	if cerr := copyDirAt(from, fromName, to, toName); cerr != nil {
		return errors.Join(fmt.Errorf("move %s to %s: rename failed (%v), and so did copying: %w", fromName, toName, err, cerr), removeAllAt(to, toName))
	}
	if rerr := removeAllAt(from, fromName); rerr != nil {
		return fmt.Errorf("move %s to %s: copied, but removing the source failed: %w", fromName, toName, rerr)
	}
	return nil
}

// renameAt renames between the directories of two roots.
func renameAt(from *os.Root, fromName string, to *os.Root, toName string) error {
	ff, err := from.Open(".")
	if err != nil {
		return err
	}
	defer ff.Close()
	tf, err := to.Open(".")
	if err != nil {
		return err
	}
	defer tf.Close()
	return platform.RenameAt(ff, fromName, tf, toName)
}

// copyDirAt copies the directory fromName of from to a new directory
// toName of to.
func copyDirAt(from *os.Root, fromName string, to *os.Root, toName string) error {
	src, err := openChild(from, fromName)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat(".")
	if err != nil {
		return err
	}
	if err := to.Mkdir(toName, info.Mode().Perm()|0o700); err != nil {
		return err
	}
	dst, err := openChild(to, toName)
	if err != nil {
		return err
	}
	defer dst.Close()
	return copyTreeAt(src, dst)
}

// copyTreeAt copies directories, regular files and symbolic links (as
// links) from src into dst, following none; other entries are skipped.
func copyTreeAt(src, dst *os.Root) error {
	return fs.WalkDir(src.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		name := filepath.FromSlash(p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return dst.Mkdir(name, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := src.Readlink(name)
			if err != nil {
				return err
			}
			return dst.Symlink(link, name)
		case info.Mode().IsRegular():
			in, err := src.Open(name)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := dst.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm()|0o600)
			if err != nil {
				return err
			}
			_, werr := io.Copy(out, in)
			return errors.Join(werr, out.Close())
		}
		return nil
	})
}

// copyFile copies a regular file to a new file dst.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm|0o600)
	if err != nil {
		return err
	}
	_, werr := io.Copy(out, in)
	return errors.Join(werr, out.Close())
}

// removeTree is os.RemoveAll with a second way: entry by entry, deepest
// first, for systems where the first fails on a whole tree (Wine's
// emulation of Windows lacks the call os.RemoveAll uses there). For the
// agent's own directories; a task directory's content goes through
// removeInTask.
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	var paths []string
	_ = filepath.WalkDir(p, func(q string, _ fs.DirEntry, _ error) error {
		paths = append(paths, q)
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		_ = os.Remove(paths[i])
	}
	if _, serr := os.Lstat(p); errors.Is(serr, fs.ErrNotExist) {
		return nil
	}
	return err
}
