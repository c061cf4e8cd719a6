package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the runner and provisioner binaries that TestMain builds.
var binDir string

// TestMain builds cmd/runner and cmd/provisioner once, without the race
// detector (they are the programs under test, run as a lab machine and a
// server would run them), then runs the suite.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labrunner-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults: temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"github.com/labrunner/labrunner/cmd/runner", "github.com/labrunner/labrunner/cmd/provisioner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: go build of the runner and provisioner: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// figure prints one measured figure on standard output, where `go test
// -v` (make faults) shows it whatever the test's outcome.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	fmt.Printf("FIGURE %s: "+format+"\n", append([]any{t.Name()}, args...)...)
}
