//go:build unix

package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	buildversion "github.com/labrunner/labrunner/internal/version"
)

// TestVersionStampedByTheMakefile builds the runner the way `make build` and
// `make cross` do (the Makefile's LDFLAGS variable) and checks that
// `runner version --json` and `--version` report the stamped version,
// commit and date: a renamed variable or package would silently leave
// every release saying "dev".
func TestVersionStampedByTheMakefile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "runner")
	ldflags, err := exec.Command("make", "-s", "--no-print-directory", "-C", root, "print-ldflags",
		"VERSION=9.8.7", "COMMIT=0123456789abcdef0123456789abcdef01234567", "BUILDDATE=2026-12-07T10:11:12Z").Output()
	if err != nil {
		t.Fatalf("make print-ldflags: %v", err)
	}
	if out, err := exec.Command("go", "build", "-o", bin, "-ldflags", strings.TrimSpace(string(ldflags)), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("runner version --json: %v", err)
	}
	var info buildversion.Info
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("runner version --json printed %q: %v", out, err)
	}
	if info.Version != "9.8.7" || info.Commit != "0123456789abcdef0123456789abcdef01234567" || info.Date != "2026-12-07T10:11:12Z" || info.Platform == "" || info.Go == "" {
		t.Fatalf("runner version --json = %+v; want the stamped version, commit and date", info)
	}
	out, err = exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(string(out), "9.8.7 (0123456789ab, 2026-12-07T10:11:12Z)") {
		t.Fatalf("runner --version = %q, %v", out, err)
	}
}
