package platform

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func openDirs(t *testing.T, paths ...string) []*os.File {
	t.Helper()
	var out []*os.File
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = append(out, f)
	}
	return out
}

func TestRenameAtMovesADirectoryBetweenOpenDirectories(t *testing.T) {
	base := testTempDir(t)
	d := openDirs(t, filepath.Join(base, "a"), filepath.Join(base, "b"))
	if err := os.MkdirAll(filepath.Join(base, "a", "c", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "a", "c", "sub", "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RenameAt(d[0], "c", d[1], "moved"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "b", "moved", "sub", "f")); err != nil || string(b) != "f" {
		t.Errorf("moved file reads %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(base, "a", "c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the source is still there: %v", err)
	}
	// Neither name may be a path: that is how a link would be followed.
	for _, names := range [][2]string{{"../b/moved", "x"}, {"x", "../escape"}, {"..", "x"}, {"x", ""}, {`moved\sub`, "x"}} {
		if err := RenameAt(d[1], names[0], d[0], names[1]); err == nil {
			t.Errorf("RenameAt(%q, %q) succeeded", names[0], names[1])
		}
	}
	if err := os.MkdirAll(filepath.Join(base, "a", "full"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "a", "full", "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RenameAt(d[1], "moved", d[0], "full"); err == nil {
		t.Error("a rename replaced a non-empty directory")
	}
}

// A link named by RenameAt is moved as itself: its target stays where it
// is.
func TestRenameAtMovesALinkItself(t *testing.T) {
	base := testTempDir(t)
	d := openDirs(t, filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "target"))
	if err := os.WriteFile(filepath.Join(base, "target", "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "target"), filepath.Join(base, "a", "l")); err != nil {
		t.Skipf("cannot make a symbolic link here: %v", err)
	}
	if info, err := os.Lstat(filepath.Join(base, "a", "l")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Skipf("symbolic links are not links here (Wine): %v %v", info, err)
	}
	if err := RenameAt(d[0], "l", d[1], "l"); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(filepath.Join(base, "b", "l")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("moved: %v, %v; want the link", info, err)
	}
	if _, err := os.Stat(filepath.Join(base, "target", "f")); err != nil {
		t.Errorf("the link's target moved: %v", err)
	}
}

func TestRemoveAtRemovesEntriesNotWhatTheyPointTo(t *testing.T) {
	base := testTempDir(t)
	for _, p := range []string{"empty", "full"} {
		if err := os.MkdirAll(filepath.Join(base, "d", p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := openDirs(t, filepath.Join(base, "d"), filepath.Join(base, "target"))[0]
	for _, f := range []string{filepath.Join(base, "d", "f"), filepath.Join(base, "d", "full", "keep"), filepath.Join(base, "target", "keep")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "d", "ro"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	names := []string{"f", "ro", "empty"}
	if os.Symlink(filepath.Join(base, "target"), filepath.Join(base, "d", "l")) == nil {
		if info, err := os.Lstat(filepath.Join(base, "d", "l")); err == nil && info.Mode()&os.ModeSymlink != 0 {
			names = append(names, "l")
		}
	}
	for _, n := range names {
		if err := RemoveAt(dir, n); err != nil {
			t.Errorf("RemoveAt(%s): %v", n, err)
		}
		if _, err := os.Lstat(filepath.Join(base, "d", n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", n, err)
		}
	}
	if err := RemoveAt(dir, "full"); err == nil {
		t.Error("a non-empty directory was removed")
	}
	if err := RemoveAt(dir, "../target"); err == nil {
		t.Error("RemoveAt took a path")
	}
	if _, err := os.Stat(filepath.Join(base, "target", "keep")); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}
}
