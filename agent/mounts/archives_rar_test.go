package mounts

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMakeRarIsARar checks the test writer against an independent reader,
// unar, where it is installed (Debian package unar).
func TestMakeRarIsARar(t *testing.T) {
	unar, err := exec.LookPath("unar")
	if err != nil {
		t.Skip("unar not installed; the rar writer is checked by rardecode only")
	}
	dir := tempDir(t)
	file := writeFile(t, dir, "a.rar", makeRar(t, []entry{{name: "d", dir: true}, {name: "d/hello.txt", body: "hello from rar\n"}}))
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(unar, "-q", "-o", out, "-D", file).CombinedOutput(); err != nil {
		t.Fatalf("unar: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "d", "hello.txt"))
	if err != nil || string(b) != "hello from rar\n" {
		t.Fatalf("unar gave %q, %v", b, err)
	}
}
