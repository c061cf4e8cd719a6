package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

var tool = []entry{
	{name: "tool", dir: true},
	{name: "tool/readme.txt", body: "readme\n"},
	{name: "tool/bin/run.sh", body: "#!/bin/sh\necho run\n", mode: 0o755},
	{name: "top.txt", body: "top\n"},
}

func readOrFail(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnpackEachFormat(t *testing.T) {
	for _, f := range []Format{Zip, Rar, TarGz, TarXz, TarZst} {
		t.Run(string(f), func(t *testing.T) {
			dir := tempDir(t)
			file := writeFile(t, dir, "a."+string(f), archive(t, f, tool))
			root := filepath.Join(dir, "out")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := Unpack(f, file, root); err != nil {
				t.Fatal(err)
			}
			if got := readOrFail(t, filepath.Join(root, "tool", "readme.txt")); got != "readme\n" {
				t.Errorf("readme.txt = %q", got)
			}
			if got := readOrFail(t, filepath.Join(root, "tool", "bin", "run.sh")); got != "#!/bin/sh\necho run\n" {
				t.Errorf("run.sh = %q", got)
			}
			if got := readOrFail(t, filepath.Join(root, "top.txt")); got != "top\n" {
				t.Errorf("top.txt = %q", got)
			}
		})
	}
}

func TestUnpackTarBz2Fixture(t *testing.T) {
	root := tempDir(t)
	if err := Unpack(TarBz2, filepath.Join("testdata", "sample.tar.bz2"), root); err != nil {
		t.Fatal(err)
	}
	if got := readOrFail(t, filepath.Join(root, "tool", "readme.txt")); got != "readme from tar.bz2\n" {
		t.Errorf("readme.txt = %q", got)
	}
	if got := readOrFail(t, filepath.Join(root, "tool", "bin", "run.sh")); got != "#!/bin/sh\necho run\n" {
		t.Errorf("run.sh = %q", got)
	}
}

func TestUnpackRefusesEscapingEntries(t *testing.T) {
	cases := []struct {
		name    string
		formats []Format
		entries []entry
	}{
		{"dot-dot", []Format{Zip, Rar, TarGz, TarZst}, []entry{{name: "ok.txt", body: "ok"}, {name: "../evil.txt", body: "evil"}}},
		{"nested dot-dot", []Format{Zip, Rar, TarGz}, []entry{{name: "a/../../evil.txt", body: "evil"}}},
		{"backslash dot-dot", []Format{Zip, TarGz}, []entry{{name: `..\evil.txt`, body: "evil"}}},
		{"absolute", []Format{Zip, Rar, TarGz}, []entry{{name: "/tmp/evil.txt", body: "evil"}}},
		{"drive", []Format{Zip, TarGz}, []entry{{name: `C:\evil.txt`, body: "evil"}}},
		{"symlink absolute", []Format{Zip, TarGz}, []entry{{name: "link", link: "/etc"}}},
		{"symlink up", []Format{Zip, TarGz, TarXz}, []entry{{name: "sub", dir: true}, {name: "sub/link", link: "../../outside"}}},
		{"hard link up", []Format{TarGz}, []entry{{name: "hl", hard: "../evil.txt"}}},
	}
	for _, c := range cases {
		for _, f := range c.formats {
			t.Run(c.name+"/"+string(f), func(t *testing.T) {
				base := tempDir(t)
				file := writeFile(t, base, "a."+string(f), archive(t, f, c.entries))
				root := filepath.Join(base, "x", "root")
				if err := os.MkdirAll(root, 0o755); err != nil {
					t.Fatal(err)
				}
				err := Unpack(f, file, root)
				var esc *EscapeError
				if !errors.As(err, &esc) {
					t.Fatalf("Unpack = %v, want an EscapeError", err)
				}
				var ue *UnpackError
				if !errors.As(err, &ue) {
					t.Errorf("Unpack = %T, want it wrapped in an UnpackError", err)
				}
				for _, p := range []string{filepath.Join(base, "evil.txt"), filepath.Join(base, "x", "evil.txt"), filepath.Join(base, "x", "outside")} {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s was written outside the root", p)
					}
				}
				if _, err := os.Lstat(filepath.Join(root, "link")); err == nil {
					t.Errorf("the escaping link was made")
				}
			})
		}
	}
}

func TestUnpackCorruptArchive(t *testing.T) {
	for _, f := range []Format{Zip, Rar, TarGz, TarBz2, TarXz, TarZst} {
		t.Run(string(f), func(t *testing.T) {
			dir := tempDir(t)
			file := writeFile(t, dir, "not-an-archive", []byte("this is not an archive at all, just text\n"))
			err := Unpack(f, file, dir)
			var ue *UnpackError
			if !errors.As(err, &ue) {
				t.Fatalf("Unpack = %v, want an UnpackError", err)
			}
		})
	}
}

func TestLocalName(t *testing.T) {
	for name, want := range map[string]string{"a/b": "a/b", "./a//b/": "a/b", `a\b`: "a/b", ".": ".", "a/./b": "a/b"} {
		got, err := localName(name)
		if err != nil || got != want {
			t.Errorf("localName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"..", "../a", "a/../../b", `a\..\..\b`, "/a", `\a`, `C:\a`, "C:a"} {
		if got, err := localName(name); err == nil {
			t.Errorf("localName(%q) = %q, want an error", name, got)
		}
	}
}
