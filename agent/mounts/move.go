package mounts

// Moving a cache between the caches directory and a task directory is a
// rename when both are on one volume (the default layout); across volumes
// it is a copy and a removal, as generic-worker's RenameCrossDevice does.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// moveDir moves the directory src to dst, whose parent exists; an empty
// directory already at dst is replaced.
func moveDir(src, dst string) error {
	if info, err := os.Lstat(dst); err == nil {
		if !info.IsDir() {
			return fmt.Errorf("move %s to %s: %s exists and is not a directory", src, dst, dst)
		}
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("move %s to %s: %s exists and is not empty", src, dst, dst)
		}
	}
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	var le *os.LinkError
	if !errors.As(err, &le) {
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	// Perhaps another volume: copy, then remove the source.
	if cerr := copyTree(src, dst); cerr != nil {
		_ = removeTree(dst)
		return fmt.Errorf("move %s to %s: rename failed (%v), and so did copying: %w", src, dst, err, cerr)
	}
	if rerr := removeTree(src); rerr != nil {
		return fmt.Errorf("move %s to %s: copied, but removing the source failed: %w", src, dst, rerr)
	}
	return nil
}

// copyTree copies directories, files and symbolic links.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
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
// emulation of Windows lacks the call os.RemoveAll uses there).
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
