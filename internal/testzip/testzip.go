// Package testzip makes zip archives for tests and benchmarks of mounts:
// archives shaped like what tasks mount (a test harness, a toolchain),
// built in memory, the same bytes on every run. Only tests import it.
package testzip

import (
	"archive/zip"
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Mixed is a zip of at least size bytes: files of up to 1 MiB (a quarter
// of size when that is less), alternately random (stored as is) and
// text-like (deflated), as a test harness or a toolchain mixes them, in
// 16 directories. The same size gives the same bytes.
func Mixed(t testing.TB, size int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	chunk := make([]byte, min(1<<20, max(size/4, 1)))
	for i := 0; buf.Len() < size; i++ {
		method := zip.Store
		if i%2 == 1 {
			method = zip.Deflate
			for j := range chunk {
				chunk[j] = "abcdefghij klmnop\n"[rng.IntN(18)]
			}
		} else {
			for j := range chunk {
				chunk[j] = byte(rng.Uint32())
			}
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("dir%02d/file%04d.bin", i%16, i), Method: method})
		if err != nil {
			t.Fatalf("zip entry %d: %v", i, err)
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatalf("zip entry %d: %v", i, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("close the zip: %v", err)
	}
	return buf.Bytes()
}
