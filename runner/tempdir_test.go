package runner

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// testTempDir is t.TempDir without its cleanup, which fails under Wine 8
// ("Invalid function"): entries are removed one by one, deepest first.
func testTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "labrunner-runner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.RemoveAll(dir) == nil {
			return
		}
		var paths []string
		_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, _ error) error {
			paths = append(paths, p)
			return nil
		})
		slices.Reverse(paths)
		for _, p := range paths {
			_ = os.Remove(p)
		}
	})
	return dir
}
