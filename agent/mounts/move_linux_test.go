package mounts

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// crossVolumeCaches is a caches directory on another volume than base
// (/dev/shm, a tmpfs), or skips.
func crossVolumeCaches(t *testing.T, base string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "labrunner-caches-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(base, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the tasks' volume here")
	}
	return dir
}

// Across volumes a cache is copied and the source removed; links in it
// stay links, and a parent swapped for a link is refused as for a rename.
func TestCacheAcrossVolumesIsCopiedWithoutFollowingLinks(t *testing.T) {
	base := tempDir(t)
	caches := crossVolumeCaches(t, base)
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "victim"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "victim", "precious"), []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, base, func(c *Config) { c.CachesDir = caches })
	cache := []Mount{{Kind: WritableCache, CacheName: "c", Path: "x/victim"}}
	md, l, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	c1 := filepath.Join(base, "t1", "x", "victim")
	if err := os.MkdirAll(filepath.Join(c1, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c1, "sub", "f"), []byte("kept"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(c1, "out")); err != nil {
		t.Fatal(err)
	}
	if err := md.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(c1); !os.IsNotExist(err) {
		t.Errorf("the copied cache is still in the task directory: %v", err)
	}

	md, l, err = mountAll(t, m, filepath.Join(base, "t2"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	c2 := filepath.Join(base, "t2", "x", "victim")
	if got := readOrFail(t, filepath.Join(c2, "sub", "f")); got != "kept" {
		t.Errorf("the cache came back with %q", got)
	}
	if info, err := os.Lstat(filepath.Join(c2, "out")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link in the cache came back as %v, %v", info, err)
	}
	// The task swaps x for a link to outside.
	x := filepath.Join(base, "t2", "x")
	if err := os.Rename(x, x+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, x); err != nil {
		t.Fatal(err)
	}
	if err := md.Unmount(false); err == nil || !strings.Contains(err.Error(), "not a plain directory") {
		t.Errorf("Unmount through a link = %v, want it refused", err)
	}
	if got := readOrFail(t, filepath.Join(outside, "victim", "precious")); got != "root only" {
		t.Errorf("outside changed: %q", got)
	}
	if ents, _ := os.ReadDir(caches); len(ents) != 1 {
		t.Errorf("caches directory holds %d entries, want only the index", len(ents))
	}
}
