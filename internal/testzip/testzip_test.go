package testzip

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

func TestMixedIsAValidZipOfStoredAndDeflatedFilesOfAtLeastSize(t *testing.T) {
	const size = 64 << 10
	body := Mixed(t, size)
	if len(body) < size {
		t.Fatalf("%d bytes, want at least %d", len(body), size)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("read the zip back: %v", err)
	}
	methods := map[uint16]int{}
	for _, f := range zr.File {
		methods[f.Method]++
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		n, err := io.Copy(io.Discard, rc) // checks the CRC at EOF
		rc.Close()
		if err != nil || n != size/4 {
			t.Fatalf("%s: %d bytes, %v; want %d", f.Name, n, err, size/4)
		}
	}
	if methods[zip.Store] == 0 || methods[zip.Deflate] == 0 {
		t.Errorf("methods %v, want both stored and deflated files", methods)
	}
	if !bytes.Equal(Mixed(t, size), body) {
		t.Error("a second zip of the same size differs")
	}
}
