package installers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// artifacts is where the tests' builds go, shared by the tests of one run
// and removed by TestMain.
var artifacts string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labrunner-installers-")
	if err != nil {
		panic(err)
	}
	artifacts = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	runnerExeOnce sync.Once
	runnerExePath string
)

// runnerExe builds runner.exe (windows/amd64) once per run.
func runnerExe(t *testing.T) string {
	t.Helper()
	runnerExeOnce.Do(func() {
		p := filepath.Join(artifacts, "runner.exe")
		run(t, repoRoot(t), []string{"GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0"}, "go", "build", "-trimpath",
			"-ldflags", "-X github.com/labrunner/labrunner/internal/version.version=test", "-o", p, "./cmd/runner")
		runnerExePath = p
	})
	if runnerExePath == "" {
		t.Fatal("runner.exe was not built (see the first test that tried)")
	}
	return runnerExePath
}

var (
	msiMu    sync.Mutex
	msiBuilt = map[string]string{}
)

// buildMSI builds the MSI of version with installers/build.sh (the
// runner.exe of runnerExe, unsigned) once per run, and returns its path.
func buildMSI(t *testing.T, version string) string {
	t.Helper()
	exe := runnerExe(t)
	msiMu.Lock()
	defer msiMu.Unlock()
	if p, ok := msiBuilt[version]; ok {
		return p
	}
	out := filepath.Join(artifacts, "msi-"+version)
	run(t, repoRoot(t), []string{"VERSION=" + version, "OUT=" + out, "RUNNER_EXE=" + exe, "SIGN_PKCS12=", "SIGN_CERT="},
		"installers/build.sh", "msi")
	p := filepath.Join(out, "labrunner-"+version+"-x64.msi")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build.sh made no %s: %v", p, err)
	}
	msiBuilt[version] = p
	return p
}

// msiTable is one table of an MSI as msiinfo exports it: a row per
// record, keyed by column name.
func msiTable(t *testing.T, msi, table string) []map[string]string {
	t.Helper()
	out := run(t, "", nil, "msiinfo", "export", msi, table)
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(out, "\r\n", "\n"), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: %q", table, out)
	}
	cols := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, l := range lines[3:] { // names, types, table name and keys
		vals := strings.Split(l, "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(vals) {
				row[c] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// rowBy finds the row whose column col is val.
func rowBy(t *testing.T, rows []map[string]string, col, val string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r[col] == val {
			return r
		}
	}
	t.Fatalf("no row with %s = %q in %v", col, val, rows)
	return nil
}
