package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Windows refuses, besides what every OS refuses, names that are devices
// or streams rather than files in the task directory.
func TestCheckArtifactPathWindows(t *testing.T) {
	for _, p := range []string{`dist\app.exe`, "dist/app.exe", `a\b\..\c.txt`} {
		if msg := checkArtifactPath(p); msg != "" {
			t.Errorf("checkArtifactPath(%q) = %q, want accepted", p, msg)
		}
	}
	for p, words := range map[string]string{
		"NUL":             "reserved device names",
		`dist\con.txt`:    "reserved device names",
		"COM1":            "reserved device names",
		"file.txt:stream": "reserved device names",
		`\\?\C:\x`:        "absolute",
		`\\.\pipe\x`:      "absolute",
		`C:x`:             "absolute",
		`D:\secret`:       "absolute",
	} {
		if msg := checkArtifactPath(p); !strings.Contains(msg, words) {
			t.Errorf("checkArtifactPath(%q) = %q, want it to say %q", p, msg, words)
		}
	}
}

// A device name that reaches resolveArtifacts without the payload check
// is an error artifact: os.Root does not open devices.
func TestResolveArtifactsRefusesDevices(t *testing.T) {
	dir := testTempDir(t)
	writeTestFile(t, filepath.Join(dir, "dist", "app.exe"), "MZ")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	got := resolveArtifacts(root, dir, []PayloadArtifact{
		{Type: FileArtifact, Path: "NUL", Name: "public/nul"},
		{Type: FileArtifact, Path: `dist\CON`, Name: "public/con"},
		{Type: DirectoryArtifact, Path: `dist\`, Name: "public/dist"},
	}, time.Now().Add(time.Hour))
	if len(got) != 3 || got[0].Kind != KindError || got[1].Kind != KindError || got[2].Kind != KindFile || got[2].Name != "public/dist/app.exe" {
		t.Fatalf("artifacts %+v", got)
	}
	if body := readArtifact(t, got[2]); body != "MZ" {
		t.Errorf("app.exe reads %q", body)
	}
}
