package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The task owns its directory and may replace any directory in it by a
// link (a junction on Windows) to a place only root can write. Giving the
// cache back, or purging it, must then touch nothing outside the task
// directory, and the cache must not come back.

// linkTo replaces path by a link to target, as a task would (the
// directory itself is moved aside, so the cache is still on disk).
type linkTo func(t *testing.T, target, path string)

func symlinkTo(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := symlink(target, path); err != nil {
		t.Skip(err)
	}
}

// symlink makes a symbolic link, or says why it cannot here (no
// privilege on Windows; Wine reports success and makes none).
func symlink(target, path string) error {
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("cannot make a symbolic link here: %w", err)
	}
	if info, err := os.Lstat(path); err != nil || info.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("symbolic links are not links here (Wine): %v %v", info, err)
	}
	return nil
}

func testUnmountThroughALink(t *testing.T, link linkTo) {
	cases := []struct {
		name string
		// cache is where the cache is mounted; swap is the directory the
		// task replaces by a link to outside; victim is what that makes
		// the cache's path name outside.
		cache, swap, victim string
	}{
		{"parent", "x/victim", "x", "victim"},
		{"grandparent", "a/b/victim", "a", "b/victim"},
		{"cache itself", "x/victim", "x/victim", ""},
	}
	for _, tc := range cases {
		for _, purge := range []bool{false, true} {
			name := tc.name
			if purge {
				name += " purged"
			}
			t.Run(name, func(t *testing.T) {
				base := tempDir(t)
				outside := filepath.Join(base, "outside")
				precious := filepath.Join(outside, filepath.FromSlash(tc.victim), "precious")
				if err := os.MkdirAll(filepath.Dir(precious), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(precious, []byte("root only"), 0o600); err != nil {
					t.Fatal(err)
				}
				m := newManager(t, base, nil)
				cache := []Mount{{Kind: WritableCache, CacheName: "c", Path: tc.cache}}
				md, l, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
				if err != nil {
					t.Fatalf("%v\n%s", err, l)
				}
				link(t, outside, filepath.Join(base, "t1", filepath.FromSlash(tc.swap)))

				err = md.Unmount(purge)
				if !purge && err == nil {
					t.Error("the cache was given back through a link")
				}
				if got, rerr := os.ReadFile(precious); rerr != nil || string(got) != "root only" {
					t.Errorf("%s outside the task directory: %q, %v (Unmount: %v)", precious, got, rerr, err)
				}
				if ents, _ := os.ReadDir(filepath.Join(base, "caches")); len(ents) != 1 {
					t.Errorf("caches directory holds %d entries, want only the index", len(ents))
				}
				md, l, err = mountAll(t, m, filepath.Join(base, "t2"), cache)
				if err != nil {
					t.Fatalf("%v\n%s", err, l)
				}
				defer md.Unmount(true)
				if !strings.Contains(l.String(), "No existing writable directory cache") {
					t.Errorf("the next task was given a cache back:\n%s", l)
				}
				if _, err := os.Stat(filepath.Join(base, "t2", filepath.FromSlash(tc.cache), "precious")); err == nil {
					t.Error("the next task sees the outside directory in its cache")
				}
			})
		}
	}
}

func TestUnmountThroughASymlinkLeavesTheOutsideAlone(t *testing.T) {
	testUnmountThroughALink(t, symlinkTo)
}

// os.Root alone follows a link that stays inside the task directory; the
// agent follows none.
func TestOpenPlainDirRefusesALinkInsideTheRoot(t *testing.T) {
	base := tempDir(t)
	if err := os.MkdirAll(filepath.Join(base, "y", "z"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlinkTo(t, "y", filepath.Join(base, "x"))
	root, err := os.OpenRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, rel := range []string{"x", filepath.Join("x", "z")} {
		d, err := openPlainDir(root, rel, false)
		var npd *notPlainDirError
		if !errors.As(err, &npd) || npd.path != "x" {
			t.Errorf("openPlainDir(%s) = %v, want x refused", rel, err)
		}
		if d != nil {
			d.Close()
		}
	}
	d, err := openPlainDir(root, filepath.Join("y", "z"), false)
	if err != nil {
		t.Fatalf("a plain path: %v", err)
	}
	d.Close()
}

// Links a task leaves inside a cache are kept as links, never followed.
func TestLinksInsideACacheStayLinks(t *testing.T) {
	base := tempDir(t)
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, base, nil)
	cache := []Mount{{Kind: WritableCache, CacheName: "c", Path: "c"}}
	md, l, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	if err := symlink(outside, filepath.Join(base, "t1", "c", "out")); err != nil {
		t.Skip(err)
	}
	if err := md.Unmount(false); err != nil {
		t.Fatal(err)
	}
	md, l, err = mountAll(t, m, filepath.Join(base, "t2"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	if info, err := os.Lstat(filepath.Join(base, "t2", "c", "out")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link in the cache came back as %v, %v", info, err)
	}
	if err := md.Unmount(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("purging a cache with a link in it removed the link's target: %v", err)
	}
}
