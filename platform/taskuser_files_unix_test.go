//go:build linux || darwin

package platform

import (
	"os"
	"path/filepath"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("task users are made with useradd (dscl on macOS) and need root; run the tests as root (CI does)")
	}
}

// What a task account leaves in a shared directory goes with it: its
// files and directories (with what others put in them), its files inside
// others' open directories, its links (not what they point to). Others'
// files, what a link of someone else's points to, others' directories
// no task account can pass through (not entered) and the runner's
// directories (keep) stay.
func TestRemoveFilesOfAnAccount(t *testing.T) {
	needRoot(t)
	const mine, theirs = 71010, 71011
	shared := testTempDir(t)
	outside := testTempDir(t)
	at := func(p ...string) string { return filepath.Join(append([]string{shared}, p...)...) }
	mk := func(path string, dir bool, uid int) {
		t.Helper()
		var err error
		if dir {
			err = os.Mkdir(path, 0o777)
		} else {
			err = os.WriteFile(path, []byte("x"), 0o644)
		}
		if err == nil {
			err = os.Lchown(path, uid, uid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, path string, uid int) {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	mk(at("mine"), false, mine)
	mk(at("my-dir"), true, mine)
	mk(at("my-dir", "deep"), true, mine)
	mk(at("my-dir", "deep", "theirs-inside"), false, theirs)
	mk(at("their-dir"), true, theirs)
	mk(at("their-dir", "mine-inside"), false, mine)
	mk(at("their-dir", "theirs"), false, theirs)
	mk(filepath.Join(outside, "root-file"), false, 0)
	ln(filepath.Join(outside, "root-file"), at("my-link"), mine)
	mk(filepath.Join(outside, "mine-behind-a-link"), false, mine)
	ln(outside, at("root-link"), 0)
	mk(at("their-private"), true, theirs)
	mk(at("their-private", "mine-made-before-it-closed"), false, mine)
	if err := os.Chmod(at("their-private"), 0o700); err != nil {
		t.Fatal(err)
	}
	mk(at("task-dir"), true, mine)
	mk(at("task-dir", "artifact"), false, mine)

	n, err := removeFilesOf([]string{shared}, mine, []string{at("task-dir")})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("removed %d entries, want 4 (mine, my-dir, their-dir/mine-inside, my-link)", n)
	}
	for _, gone := range []string{at("mine"), at("my-dir"), at("their-dir", "mine-inside"), at("my-link")} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", gone, err)
		}
	}
	for _, kept := range []string{at("their-dir", "theirs"), at("their-private", "mine-made-before-it-closed"), filepath.Join(outside, "root-file"), filepath.Join(outside, "mine-behind-a-link"), at("root-link"), at("task-dir", "artifact")} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s was removed: %v", kept, err)
		}
	}
}
