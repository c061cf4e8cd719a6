package machofat

import (
	"bytes"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestUniversalBinaryReadsBack builds a small program for darwin/amd64 and
// darwin/arm64, joins them, and reads the result with debug/macho: two
// slices, their CPUs, each byte for byte, each at a 16 KiB boundary.
func TestUniversalBinaryReadsBack(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var thin [][]byte
	for _, arch := range []string{"amd64", "arm64"} {
		out := filepath.Join(dir, "hi-"+arch)
		cmd := exec.Command("go", "build", "-o", out, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", arch, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		thin = append(thin, b)
	}
	var fat bytes.Buffer
	if err := Write(&fat, thin...); err != nil {
		t.Fatal(err)
	}
	ff, err := macho.NewFatFile(bytes.NewReader(fat.Bytes()))
	if err != nil {
		t.Fatalf("debug/macho cannot read it: %v", err)
	}
	if len(ff.Arches) != 2 || ff.Arches[0].Cpu != macho.CpuAmd64 || ff.Arches[1].Cpu != macho.CpuArm64 {
		t.Fatalf("arches %+v, want amd64 then arm64", ff.Arches)
	}
	for i, a := range ff.Arches {
		if a.Offset%(1<<14) != 0 || a.Align != 14 {
			t.Errorf("slice %d at %d, align %d; want 16 KiB aligned", i, a.Offset, a.Align)
		}
		if !bytes.Equal(fat.Bytes()[a.Offset:a.Offset+a.Size], thin[i]) {
			t.Errorf("slice %d differs from its thin binary", i)
		}
	}
}

func TestRefusesWhatIsNotThinMachO(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []byte("#!/bin/sh\n")); err == nil {
		t.Error("a shell script was accepted as a slice")
	}
	if err := Write(&bytes.Buffer{}); err == nil {
		t.Error("no slices was accepted")
	}
}
