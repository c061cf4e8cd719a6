package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labrunner/labrunner/platform"
)

// writeEnrolment makes the data and config directories private and writes
// the link state (it holds the machine token) before the config, so that
// a config on disk always has its machine token beside it.
func writeEnrolment(o EnrollOptions, linkPath string, st linkState, cfg []byte) error {
	for _, dir := range []string{o.DataDir, filepath.Dir(o.ConfigPath), filepath.Join(o.DataDir, "tasks")} {
		if _, err := platform.MakePrivateDir(dir); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode provisioner link state: %w", err)
	}
	if err := writePrivateFile(linkPath, append(data, '\n')); err != nil {
		return err
	}
	return writePrivateFile(o.ConfigPath, cfg)
}

// writePrivateFile replaces path atomically with a file only the service's
// account can read: created 0600 beside it, synced, renamed over it, then
// restricted (on Windows the private directory's ACL is inherited, and
// this confirms it).
func writePrivateFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, platform.PrivateFileMode)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	if _, err := platform.RestrictToServiceAccount(path); err != nil {
		return err
	}
	return nil
}
