package browsertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	chromiumOnce sync.Once
	chromiumPath string
	chromiumErr  string
)

// Chromium returns the path of a Chromium binary, installing Debian's
// package with scripts/ensure-chromium.sh when there is none. When that
// install fails the test is skipped, saying why, except under `make test`
// (LABRUNNER_REQUIRE_BROWSER=1), where it fails: CI must not pass without
// its browser tests.
func Chromium(t testing.TB) string {
	t.Helper()
	chromiumOnce.Do(func() {
		if p := lookChromium(); p != "" {
			chromiumPath = p
			return
		}
		script := filepath.Join(RepoRoot(), "scripts", "ensure-chromium.sh")
		out, err := exec.Command(script).CombinedOutput()
		if p := lookChromium(); err == nil && p != "" {
			chromiumPath = p
			return
		}
		chromiumErr = "chromium is not installed and " + script + " could not install it"
		if err != nil {
			chromiumErr += " (" + err.Error() + ")"
		}
		chromiumErr += ":\n" + string(out)
	})
	if chromiumPath == "" {
		if os.Getenv("LABRUNNER_REQUIRE_BROWSER") != "" {
			t.Fatalf("browser test cannot run (LABRUNNER_REQUIRE_BROWSER is set): %s", chromiumErr)
		}
		t.Skipf("browser test skipped: %s", chromiumErr)
	}
	return chromiumPath
}

// lookChromium finds a Chromium or Chrome on the PATH (LABRUNNER_CHROMIUM
// names one elsewhere).
func lookChromium() string {
	if p := os.Getenv("LABRUNNER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// RepoRoot is the repository's top directory (found from this source
// file, so that it holds wherever `go test` runs).
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		wd, _ := os.Getwd()
		return wd
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
