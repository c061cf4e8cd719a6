//go:build unix

package platform

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The runner writes the batch files and reads the saved state in a
// directory the task's earlier commands wrote: links and hard links the
// task left under those names make it neither read another file into the
// next wrapper nor overwrite one. (The files are Windows', the behaviour
// is the same everywhere; Unix makes links without privileges.) On the
// old code (os.ReadFile, os.WriteFile) the secret reached the wrapper and
// the victim was overwritten.
func TestBatchCommandDoesNotFollowTaskLinks(t *testing.T) {
	base := testTempDir(t)
	dir, outside := filepath.Join(base, "task"), filepath.Join(base, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, body string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret, victim := filepath.Join(outside, "secret"), filepath.Join(outside, "victim")
	write(secret, "TOKEN=secret-token\r\n")
	write(victim, "precious")

	if err := os.Symlink(secret, filepath.Join(dir, "env.txt")); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "dir.txt"), dir+"\r\n")
	if _, err := BatchCommand(dir, 1, false, "T", "echo"); err == nil {
		t.Error("env.txt linked out of the task directory was read")
	}
	if w, err := os.ReadFile(filepath.Join(dir, "command_000001_wrapper.bat")); err == nil && strings.Contains(string(w), "secret-token") {
		t.Errorf("the wrapper holds the secret:\n%s", w)
	}

	if err := os.Remove(filepath.Join(dir, "env.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "env.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BatchCommand(dir, 1, false, "T", "echo"); err == nil {
		t.Error("a named pipe as env.txt was read")
	}

	if err := os.Remove(filepath.Join(dir, "env.txt")); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "env.txt"), "FOO=bar\r\n")
	if err := os.Symlink(victim, filepath.Join(dir, "command_000002.bat")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, filepath.Join(dir, "command_000002_wrapper.bat")); err != nil {
		t.Fatal(err)
	}
	if _, err := BatchCommand(dir, 2, false, "T", "echo two"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("victim outside the task directory = %q, %v; want it untouched", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "command_000002.bat")); err != nil || string(b) != "@echo on\r\necho two" {
		t.Errorf("script = %q, %v", b, err)
	}
	if w, err := os.ReadFile(filepath.Join(dir, "command_000002_wrapper.bat")); err != nil || !strings.Contains(string(w), "set FOO=bar") {
		t.Errorf("wrapper = %q, %v", w, err)
	}
}
