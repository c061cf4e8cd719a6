//go:build unix

package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Symbolic links the archive makes itself, and modes, as Unix keeps them.

func TestUnpackKeepsModesAndInsideLinks(t *testing.T) {
	for _, f := range []Format{Zip, TarGz} {
		t.Run(string(f), func(t *testing.T) {
			dir := tempDir(t)
			entries := append(append([]entry{}, tool...), entry{name: "tool/current", link: "bin"}, entry{name: "hl.txt", hard: "top.txt"})
			if f == Zip {
				entries = entries[:len(entries)-1] // zip has no hard links
			}
			file := writeFile(t, dir, "a", archive(t, f, entries))
			root := filepath.Join(dir, "out")
			_ = os.Mkdir(root, 0o755)
			if err := Unpack(f, file, root); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(filepath.Join(root, "tool", "bin", "run.sh"))
			if err != nil || info.Mode().Perm() != 0o755 {
				t.Errorf("run.sh mode = %v, %v; want 0755", info.Mode(), err)
			}
			if got := readOrFail(t, filepath.Join(root, "tool", "current", "run.sh")); got != "#!/bin/sh\necho run\n" {
				t.Errorf("through the link: %q", got)
			}
			if f == TarGz {
				if got := readOrFail(t, filepath.Join(root, "hl.txt")); got != "top\n" {
					t.Errorf("hard link: %q", got)
				}
			}
		})
	}
}

func TestUnpackRefusesWritingThroughALink(t *testing.T) {
	base := tempDir(t)
	root := filepath.Join(base, "root")
	_ = os.Mkdir(root, 0o755)
	// "s" points inside (to "."), but "s/t" then "s/../x"-like tricks
	// would reach out through it; any entry under a link is refused.
	file := writeFile(t, base, "a.tgz", archive(t, TarGz, []entry{{name: "d", dir: true}, {name: "d/up", link: ".."}, {name: "d/up/evil.txt", body: "evil"}}))
	err := Unpack(TarGz, file, root)
	var esc *EscapeError
	if !errors.As(err, &esc) {
		t.Fatalf("Unpack = %v, want an EscapeError", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "evil.txt")); err == nil {
		t.Error("evil.txt was written through the link")
	}
}

func TestMountRefusesPathsThroughALinkInTheTaskDirectory(t *testing.T) {
	base := tempDir(t)
	outside := filepath.Join(base, "outside")
	_ = os.Mkdir(outside, 0o755)
	m := newManager(t, base, nil)
	taskDir := filepath.Join(base, "task")
	_ = os.MkdirAll(filepath.Join(taskDir, "cache"), 0o755)
	// As a previous task could have left in a cache.
	if err := os.Symlink(outside, filepath.Join(taskDir, "cache", "evil")); err != nil {
		t.Fatal(err)
	}
	for _, mt := range []Mount{
		{Kind: FileMount, Path: "cache/evil/f", Content: &Content{Raw: "x"}},
		{Kind: ReadOnlyDirectory, Path: "cache/evil/d", Format: TarGz, Content: &Content{Raw: string(archive(t, TarGz, tool))}},
	} {
		_, _, err := mountAll(t, m, taskDir, []Mount{mt})
		var te *TaskError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("mount at %s = %v, want a TaskError about the link", mt.Path, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the task directory: %v", ents)
	}
}

func TestCacheReplacedByALinkIsNotKept(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, nil)
	cache := []Mount{{Kind: WritableCache, CacheName: "c", Path: "c"}}
	md, _, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "t1", "c")
	_ = os.RemoveAll(target)
	if err := os.Symlink(base, target); err != nil {
		t.Fatal(err)
	}
	if err := md.Unmount(false); err == nil || !strings.Contains(err.Error(), "not a plain directory") {
		t.Errorf("Unmount = %v, want the cache refused", err)
	}
	if n := len(m.caches.snapshot()); n != 0 {
		t.Errorf("%d caches kept; a link must not become a cache", n)
	}
}
