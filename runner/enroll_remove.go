package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// RemoveData deletes what enrolment and the service wrote: the tasks
// directory, the state directory (machine token, state file, caches) and
// the configuration file, for an uninstall that asks for it. The file is
// read leniently, so that a broken one is still cleaned up. It returns the
// paths removed; a missing configuration file removes nothing.
func RemoveData(configPath string) ([]string, error) {
	b, err := os.ReadFile(configPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remove data: config %s: %w", configPath, err)
	}
	var dirs struct {
		StateDir     string `yaml:"stateDir"`
		TasksDir     string `yaml:"tasksDir"`
		CachesDir    string `yaml:"cachesDir"`
		DownloadsDir string `yaml:"downloadsDir"`
	}
	_ = yaml.Unmarshal(b, &dirs) // a broken file still has its own path removed
	var removed []string
	for _, p := range []string{dirs.TasksDir, dirs.CachesDir, dirs.DownloadsDir, dirs.StateDir, configPath} {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return removed, fmt.Errorf("remove data: %s: %w", p, err)
		}
		if filepath.Dir(abs) == abs || filepath.Dir(filepath.Dir(abs)) == filepath.Dir(abs) {
			return removed, fmt.Errorf("remove data: refusing to delete %s: too near the filesystem root for a runner directory; delete it by hand", abs)
		}
		if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := removeTree(abs); err != nil {
			return removed, fmt.Errorf("remove data: %w", err)
		}
		removed = append(removed, abs)
	}
	// The configuration's directory goes too once nothing else is in it.
	if dir := filepath.Dir(configPath); os.Remove(dir) == nil {
		removed = append(removed, dir)
	}
	return removed, nil
}

// removeTree is os.RemoveAll, with a plain walk as the fallback: on
// Windows, RemoveAll's POSIX-semantics delete fails on file systems (and
// under Wine) that lack it, where DeleteFile and RemoveDirectory work.
func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	var paths []string
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	// Children come after their directory in a walk: remove from the end.
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
