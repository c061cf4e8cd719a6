package runner

// The runner's own files are private (platform.RestrictToServiceAccount):
// at start it creates its directories so and repairs what an older
// version, a restore from backup or an operator left open, logging each
// repair. It refuses to start when it cannot make its directories private
// (a task could then read the journal's credentials or the machine token).
// docs/operations.md ("File permissions") lists the paths.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labrunner/labrunner/platform"
)

// securePrivateFiles makes the state, journal and tasks directories
// private, and restricts what is directly inside them and the state files
// configured elsewhere.
func (r *Runner) securePrivateFiles() error {
	ac := r.baseCfg
	var dirs []string
	for _, d := range []string{ac.StateDir, filepath.Join(ac.StateDir, "journal"), ac.TasksDir} {
		if d != "" && d != "journal" {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		repaired, err := platform.MakePrivateDir(d)
		if err != nil {
			return fmt.Errorf("keep the runner's files private: %w", err)
		}
		r.logRepair(d, repaired)
	}
	var paths []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("keep the runner's files private: list %s: %w", d, err)
		}
		for _, e := range entries {
			paths = append(paths, filepath.Join(d, e.Name()))
		}
	}
	// State files configured outside the state directory: the files
	// themselves, never their (possibly shared) directories.
	paths = append(paths, r.cfg.StateFile, r.cfg.Provisioner.StateFile)
	var errs []error
	for _, p := range paths {
		if p == "" {
			continue
		}
		repaired, err := platform.RestrictToServiceAccount(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.logRepair(p, repaired)
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Warn("could not make some of the runner's files private", "error", err)
	}
	return nil
}

func (r *Runner) logRepair(path, repaired string) {
	if repaired != "" {
		r.log.Warn("repaired permissions: the runner's file was open to other accounts", "path", path, "change", repaired)
	}
}
