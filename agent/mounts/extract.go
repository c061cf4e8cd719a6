package mounts

// Writing archive entries under a root directory, refusing every entry
// that could put a file outside it: an absolute name or one with a drive
// or a ".." element, a symbolic or hard link whose target leaves the root,
// and any entry whose path goes through a symbolic link the archive made
// (so a link to "." cannot be followed by "link/../x"). Names are split on
// both / and \, since archives made on Windows use either. A refused entry
// stops the unpacking: the task fails, and what was written stays inside
// the root.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// EscapeError is an archive entry that would land outside the directory.
type EscapeError struct {
	Entry  string
	Reason string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("archive entry %q refused: %s; the archive was not unpacked", e.Entry, e.Reason)
}

// extractor writes entries under root.
type extractor struct {
	root string
}

// localName turns an entry name into a clean slash path inside the root,
// or explains why it cannot be one.
func localName(name string) (string, error) {
	s := strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(s) || (len(s) >= 2 && s[1] == ':') || filepath.VolumeName(name) != "" {
		return "", &EscapeError{name, "absolute path"}
	}
	for _, el := range strings.Split(s, "/") {
		if el == ".." {
			return "", &EscapeError{name, `path has a ".." element`}
		}
	}
	c := path.Clean(s)
	if c != "." && !filepath.IsLocal(filepath.FromSlash(c)) {
		return "", &EscapeError{name, "not a plain path on this system (reserved name or drive)"}
	}
	return c, nil
}

// prepare checks that no existing element of rel's parents is a symbolic
// link, creates the parents, and removes a non-directory already at rel.
func (x *extractor) prepare(entry, rel string) (string, error) {
	if err := x.parents(entry, rel, true); err != nil {
		return "", err
	}
	target := filepath.Join(x.root, filepath.FromSlash(rel))
	if info, err := os.Lstat(target); err == nil && !info.IsDir() {
		if err := os.Remove(target); err != nil {
			return "", fmt.Errorf("replace %s: %w", target, err)
		}
	}
	return target, nil
}

// parents checks that no existing parent of rel is a symbolic link,
// creating missing ones when create is set.
func (x *extractor) parents(entry, rel string, create bool) error {
	dir := path.Dir(rel)
	cur := x.root
	if dir != "." {
		for _, el := range strings.Split(dir, "/") {
			cur = filepath.Join(cur, el)
			info, err := os.Lstat(cur)
			switch {
			case errors.Is(err, fs.ErrNotExist) && !create:
				return fmt.Errorf("archive entry %q: %s does not exist", entry, cur)
			case errors.Is(err, fs.ErrNotExist):
				if err := os.Mkdir(cur, 0o755); err != nil {
					return fmt.Errorf("create directory %s: %w", cur, err)
				}
			case err != nil:
				return fmt.Errorf("inspect %s: %w", cur, err)
			case info.Mode()&fs.ModeSymlink != 0:
				return &EscapeError{entry, "path goes through a symbolic link"}
			case !info.IsDir():
				return fmt.Errorf("archive entry %q: %s is not a directory", entry, cur)
			}
		}
	}
	return nil
}

// dir makes a directory entry.
func (x *extractor) dir(name string) error {
	rel, err := localName(name)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	target, err := x.prepare(name, rel)
	if err != nil {
		return err
	}
	if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", target, err)
	}
	if info, err := os.Lstat(target); err != nil || !info.IsDir() {
		return fmt.Errorf("archive entry %q: %s is not a directory", name, target)
	}
	return nil
}

// file writes a regular file entry; only the permission bits of mode are
// kept, and the owner can always read and write.
func (x *extractor) file(name string, mode fs.FileMode, r io.Reader) error {
	rel, err := localName(name)
	if err != nil {
		return err
	}
	if rel == "." {
		return &EscapeError{name, "a file cannot replace the directory itself"}
	}
	target, err := x.prepare(name, rel)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm()|0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	_, werr := io.Copy(f, r)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("write %s (archive entry %q): %w", target, name, err)
	}
	return nil
}

// symlink makes a symbolic link entry whose target stays inside the root.
func (x *extractor) symlink(name, linkTarget string) error {
	rel, err := localName(name)
	if err != nil {
		return err
	}
	t := strings.ReplaceAll(linkTarget, `\`, "/")
	if t == "" || path.IsAbs(t) || (len(t) >= 2 && t[1] == ':') || filepath.VolumeName(linkTarget) != "" {
		return &EscapeError{name, fmt.Sprintf("symbolic link to %q, an absolute path", linkTarget)}
	}
	if resolved := path.Join(path.Dir(rel), t); resolved == ".." || strings.HasPrefix(resolved, "../") {
		return &EscapeError{name, fmt.Sprintf("symbolic link to %q points outside the directory", linkTarget)}
	}
	target, err := x.prepare(name, rel)
	if err != nil {
		return err
	}
	if err := os.Symlink(filepath.FromSlash(t), target); err != nil {
		return fmt.Errorf("create symbolic link %s (archive entry %q): %w", target, name, err)
	}
	return nil
}

// hardlink makes a hard link entry to a file the archive already wrote.
func (x *extractor) hardlink(name, linkTarget string) error {
	rel, err := localName(name)
	if err != nil {
		return err
	}
	src, err := localName(linkTarget)
	if err != nil {
		return &EscapeError{name, fmt.Sprintf("hard link to %q, outside the directory", linkTarget)}
	}
	srcPath := filepath.Join(x.root, filepath.FromSlash(src))
	if err := x.parents(name, src, false); err != nil {
		return err
	}
	info, err := os.Lstat(srcPath)
	if err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("archive entry %q: hard link to %q, which is not a file the archive wrote before it", name, linkTarget)
	}
	target, err := x.prepare(name, rel)
	if err != nil {
		return err
	}
	if err := os.Link(srcPath, target); err != nil {
		return fmt.Errorf("create hard link %s (archive entry %q): %w", target, name, err)
	}
	return nil
}
