package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// Paths that leave the task directory are refused on every OS, whatever
// separator the payload uses.
func TestCheckArtifactPath(t *testing.T) {
	for _, p := range []string{"out.txt", "dist/app.exe", `dist\app.exe`, ".", "a/../b", "a/./b/"} {
		if msg := checkArtifactPath(p); msg != "" {
			t.Errorf("checkArtifactPath(%q) = %q, want accepted", p, msg)
		}
	}
	for p, words := range map[string]string{
		"":                                "is empty",
		"/etc/labrunner/runner.yml":       "absolute",
		`\etc\passwd`:                     "absolute",
		`C:\ProgramData\labrunner\x`:      "absolute",
		"c:relative-to-the-drive":         "absolute",
		"x:y.txt":                         "absolute",
		`\\server\share\x`:                "absolute",
		"..":                              "leaves the task directory",
		"../../../../etc/labrunner/x.yml": "leaves the task directory",
		`..\..\state.json`:                "leaves the task directory",
		"out/../../x":                     "leaves the task directory",
		"../task_2/secret":                "leaves the task directory",
	} {
		if msg := checkArtifactPath(p); !strings.Contains(msg, words) {
			t.Errorf("checkArtifactPath(%q) = %q, want it to say %q", p, msg, words)
		}
	}
}

// A payload naming a path outside the task directory is malformed: the
// problem names the field, the artifact and the fix, for every such path.
func TestPayloadRefusesArtifactPathsOutsideTaskDir(t *testing.T) {
	style := platform.TaskCommandStyle()
	command := `[["true"]]`
	if style == platform.CmdLineCommands {
		command = `["exit 0"]`
	}
	probs := problems(t, style, fmt.Sprintf(`{"command": %s, "maxRunTime": 5, "artifacts": [
		{"type": "file", "path": "ok.txt"},
		{"type": "file", "path": "../../../../etc/labrunner/runner.yml", "name": "public/x"},
		{"type": "directory", "path": "../.."},
		{"type": "file", "path": "/var/lib/labrunner/provisioner-link.json"}]}`, command))
	if len(probs) != 3 {
		t.Fatalf("problems %v, want one for each of artifacts 1, 2 and 3", probs)
	}
	hasProblem(t, probs, "payload.artifacts[1].path", "leaves the task directory", `"public/x"`, "docs/payload.md#artifacts")
	hasProblem(t, probs, "payload.artifacts[2].path", "leaves the task directory", `"../.."`)
	hasProblem(t, probs, "payload.artifacts[3].path", "absolute")
}

// Artifacts that are plain files inside the task directory upload as
// before, read through the task directory's root.
func TestResolveArtifactsReadsThroughRoot(t *testing.T) {
	dir := testTempDir(t)
	writeTestFile(t, filepath.Join(dir, "dist", "app.bin"), "app")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	got := resolveArtifacts(root, dir, []PayloadArtifact{
		{Type: FileArtifact, Path: `dist\app.bin`},
		{Type: DirectoryArtifact, Path: ".", Name: "public/all"},
	}, time.Now().Add(time.Hour))
	if len(got) != 2 || got[0].Kind != KindFile || got[0].Name != "dist/app.bin" || got[1].Name != "public/all/dist/app.bin" {
		t.Fatalf("artifacts %+v", got)
	}
	for _, a := range got {
		if body := readArtifact(t, a); body != "app" {
			t.Errorf("%s reads %q, want %q", a.Name, body, "app")
		}
	}
}

// writeFile writes body to p, making its directories.
func writeTestFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readArtifact reads a file artifact as its upload would.
func readArtifact(t *testing.T, a RunArtifact) string {
	t.Helper()
	f, size, err := a.open()
	if err != nil {
		t.Fatalf("open %s: %v", a.Name, err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		t.Fatalf("read %s: %v", a.Name, err)
	}
	return string(b)
}
