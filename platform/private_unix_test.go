//go:build unix

package platform

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestMakePrivateDirIgnoresUmaskAndRepairs(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := testTempDir(t)

	fresh := filepath.Join(dir, "a", "b")
	if repaired, err := MakePrivateDir(fresh); err != nil || repaired != "" {
		t.Fatalf("MakePrivateDir(new) = %q, %v", repaired, err)
	}
	if m := mode(t, fresh); m != 0o700 {
		t.Errorf("new directory has mode %04o under umask 0, want 0700", m)
	}

	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	repaired, err := MakePrivateDir(open)
	if err != nil || !strings.Contains(repaired, "0755 -> 0700") {
		t.Errorf("MakePrivateDir(0755 dir) = %q, %v; want the repair described", repaired, err)
	}
	if m := mode(t, open); m != 0o700 {
		t.Errorf("repaired directory has mode %04o, want 0700", m)
	}
	if repaired, err := MakePrivateDir(open); err != nil || repaired != "" {
		t.Errorf("second MakePrivateDir = %q, %v; want nothing to repair", repaired, err)
	}
}

func TestRestrictToServiceAccountFiles(t *testing.T) {
	dir := testTempDir(t)
	for _, c := range []struct {
		name       string
		mode, want os.FileMode
	}{
		{"log", 0o644, 0o600},
		{"script", 0o755, 0o700},
		{"private", 0o600, 0o600},
		{"readonly", 0o444, 0o600},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		repaired, err := RestrictToServiceAccount(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(t, p); m != c.want {
			t.Errorf("%s: mode %04o -> %04o, want %04o", c.name, c.mode, m, c.want)
		}
		if (repaired == "") != (c.mode == c.want) {
			t.Errorf("%s: repaired = %q", c.name, repaired)
		}
	}
}

func TestRestrictToServiceAccountRefusesSharedDirsAndSkipsLinks(t *testing.T) {
	dir := testTempDir(t)
	sticky := filepath.Join(dir, "sticky")
	if err := os.Mkdir(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := RestrictToServiceAccount(sticky); err == nil || !strings.Contains(err.Error(), "shared directory") {
		t.Errorf("a sticky directory was restricted (err %v); it looks like /tmp", err)
	}
	if m := mode(t, sticky); m != 0o777 {
		t.Errorf("refused directory's mode changed to %04o", m)
	}
	if _, err := RestrictToServiceAccount("/"); err == nil {
		t.Error("the filesystem root was accepted")
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := RestrictToServiceAccount(link); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, target); m != 0o644 {
		t.Errorf("a symbolic link was followed: its target is now %04o", m)
	}
}

// A directory that others may only pass through (0711, what task users
// need on the way to their task directories) counts as private; one they
// may list or write is repaired to 0700.
func TestRestrictToServiceAccountDirectories(t *testing.T) {
	dir := testTempDir(t)
	for _, c := range []struct {
		name       string
		mode, want os.FileMode
	}{
		{"private", 0o700, 0o700},
		{"passable", 0o711, 0o711},
		{"listable", 0o755, 0o700},
		{"writable", 0o733, 0o700},
		{"groupOnly", 0o710, 0o700},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		repaired, err := RestrictToServiceAccount(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(t, p); m != c.want {
			t.Errorf("%s: mode %04o -> %04o, want %04o", c.name, c.mode, m, c.want)
		}
		if (repaired == "") != (c.mode == c.want) {
			t.Errorf("%s: repaired = %q", c.name, repaired)
		}
	}
}
