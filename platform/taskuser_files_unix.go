//go:build linux || darwin

package platform

// What a task account leaves where every account may write (/tmp and its
// kin, sharedTaskDirs per OS): removed with the account, and looked for
// before an id is given again. The walk runs as root among files other
// tasks may be changing at the same moment, so it follows no link, opens
// every directory relative to its already-open parent (a directory swapped
// for a link between the look and the open is refused, not followed),
// unlinks names relative to the open parent, stays on the file system it
// started on, and does not enter other accounts' directories that no task
// account could pass through.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSharedDirDepth bounds the walk: a task could make a chain of
// directories deeper than the runner has file descriptors for.
const maxSharedDirDepth = 200

// sharedWalk walks one of the shared directories; visit is called for
// every entry (never a link followed), and says whether to descend into
// a directory. Directories in keep are passed by, not visited.
type sharedWalk struct {
	dev   uint64
	keep  map[fileID]bool
	errs  []error
	visit func(w *sharedWalk, dirfd int, path, name string, st *unix.Stat_t) (descend bool)
}

// fileID tells a file apart whatever its path.
type fileID struct{ dev, ino uint64 }

// walkSharedDirs runs visit over every entry below the existing dirs,
// except the directories keep (and what they hold).
func walkSharedDirs(dirs, keep []string, visit func(w *sharedWalk, dirfd int, path, name string, st *unix.Stat_t) bool) error {
	var errs []error
	kept := map[fileID]bool{}
	for _, k := range keep {
		var st unix.Stat_t
		if err := unix.Stat(k, &st); err == nil {
			kept[fileID{uint64(st.Dev), uint64(st.Ino)}] = true
		}
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		// The top directories are the system's (root's): their links
		// (macOS /tmp, Debian /var/lock) may be followed once, here.
		real, err := filepath.EvalSymlinks(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		fd, err := unix.Open(real, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("open %s: %w", real, err))
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			errs = append(errs, fmt.Errorf("stat %s: %w", real, err))
			continue
		}
		if kept[fileID{uint64(st.Dev), uint64(st.Ino)}] {
			unix.Close(fd)
			continue
		}
		w := &sharedWalk{dev: uint64(st.Dev), keep: kept, visit: visit}
		w.dir(fd, real, 0)
		errs = append(errs, w.errs...)
	}
	return errors.Join(errs...)
}

// dir walks the open directory fd (closed on return).
func (w *sharedWalk) dir(fd int, path string, depth int) {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if depth > maxSharedDirDepth {
		w.errs = append(w.errs, fmt.Errorf("%s: deeper than %d directories, not walked further", path, maxSharedDirDepth))
		return
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("list %s: %w", path, err))
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				w.errs = append(w.errs, fmt.Errorf("stat %s: %w", filepath.Join(path, name), err))
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && w.keep[fileID{uint64(st.Dev), uint64(st.Ino)}] {
			continue
		}
		if !w.visit(w, fd, path, name, &st) || st.Mode&unix.S_IFMT != unix.S_IFDIR || uint64(st.Dev) != w.dev {
			continue
		}
		// A directory its group and others cannot pass through (a go
		// build's, another account's private one) holds nothing a task
		// account made, unless it is the account's own, which visit took.
		if st.Mode&0o011 == 0 {
			continue
		}
		sub, err := openSubdir(fd, name, &st)
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("open %s: %w", filepath.Join(path, name), err))
			continue
		}
		w.dir(sub, filepath.Join(path, name), depth+1)
	}
}

// openSubdir opens the directory name of dirfd without following a link,
// and checks that it is the one stat described (not swapped meanwhile).
func openSubdir(dirfd int, name string, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return -1, errors.New("replaced while being walked")
	}
	return fd, nil
}

// removeFilesOf removes, below the shared directories, every file and
// directory (with all it holds) that uid owns, except the directories
// keep; it returns how many it removed. Other accounts' entries are
// walked through, never removed, unless they lie inside a directory of
// uid.
func removeFilesOf(dirs []string, uid uint32, keep []string) (int, error) {
	removed := 0
	err := walkSharedDirs(dirs, keep, func(w *sharedWalk, dirfd int, path, name string, st *unix.Stat_t) bool {
		if st.Uid != uid {
			return true
		}
		if err := w.removeEntry(dirfd, path, name, st, 0); err != nil {
			w.errs = append(w.errs, err)
		} else {
			removed++
		}
		return false
	})
	return removed, err
}

// removeEntry unlinks name of dirfd; a directory is emptied first.
func (w *sharedWalk) removeEntry(dirfd int, path, name string, st *unix.Stat_t, depth int) error {
	full := filepath.Join(path, name)
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %s: %w", full, err)
		}
		return nil
	}
	if uint64(st.Dev) != w.dev {
		return fmt.Errorf("remove %s: a mount point, left alone", full)
	}
	if depth > maxSharedDirDepth {
		return fmt.Errorf("remove %s: deeper than %d directories", full, maxSharedDirDepth)
	}
	fd, err := openSubdir(dirfd, name, st)
	if err != nil {
		return fmt.Errorf("open %s: %w", full, err)
	}
	f := os.NewFile(uintptr(fd), full)
	names, err := f.Readdirnames(-1)
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("list %s: %w", full, err))
	}
	for _, n := range names {
		var sub unix.Stat_t
		if err := unix.Fstatat(fd, n, &sub, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("stat %s: %w", filepath.Join(full, n), err))
			}
			continue
		}
		if err := w.removeEntry(fd, full, n, &sub, depth+1); err != nil {
			errs = append(errs, err)
		}
	}
	f.Close()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", full, err)
	}
	return nil
}

// idsInSharedDirs are the owners (uids and gids) within r of the entries
// below the shared directories.
func idsInSharedDirs(dirs []string, r TaskUserIDs) (map[uint32]bool, error) {
	ids := map[uint32]bool{}
	err := walkSharedDirs(dirs, nil, func(_ *sharedWalk, _ int, _, _ string, st *unix.Stat_t) bool {
		for _, id := range []uint32{st.Uid, st.Gid} {
			if id >= r.First && id <= r.Last {
				ids[id] = true
			}
		}
		return true
	})
	return ids, err
}
