//go:build unix

package mounts

import (
	"errors"
	"os"
	"path/filepath"
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
