package mounts

// Archives for the tests, made here with the same libraries that unpack
// them (tar.bz2 is a committed fixture: the standard library has no bzip2
// writer), and rar by a minimal RAR 5 writer that stores entries
// uncompressed, following the RAR 5.0 format description (rarlab.com's
// "RAR 5.0 archive format"): no Go library writes rar.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// entry is one archive member.
type entry struct {
	name string
	body string
	mode fs.FileMode // 0: 0644 for files, 0755 for dirs
	dir  bool
	link string // symbolic link target
	hard string // hard link target
}

func makeTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.mode != 0 {
			h.Mode = int64(e.mode)
		}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.hard != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.hard, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, format Format, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case TarGz:
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case TarXz:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case TarZst:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("compress: no writer for %s", format)
	}
	return buf.Bytes()
}

func makeZip(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch {
		case e.dir:
			h.Name += "/"
			h.SetMode(fs.ModeDir | 0o755)
		case e.link != "":
			h.SetMode(fs.ModeSymlink | 0o777)
		case e.mode != 0:
			h.SetMode(e.mode)
		default:
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if e.link != "" {
			body = e.link
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeRar writes a RAR 5 archive of stored (uncompressed) files and
// directories.
func makeRar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var out bytes.Buffer
	out.Write([]byte{0x52, 0x61, 0x72, 0x21, 0x1A, 0x07, 0x01, 0x00})
	block := func(typ, flags uint64, fields []byte, data []byte) {
		var h []byte
		h = binary.AppendUvarint(h, typ)
		h = binary.AppendUvarint(h, flags)
		if data != nil {
			h = binary.AppendUvarint(h, uint64(len(data)))
		}
		h = append(h, fields...)
		sized := binary.AppendUvarint(nil, uint64(len(h)))
		sized = append(sized, h...)
		crc := make([]byte, 4)
		binary.LittleEndian.PutUint32(crc, crc32.ChecksumIEEE(sized))
		out.Write(crc)
		out.Write(sized)
		out.Write(data)
	}
	block(1, 0, binary.AppendUvarint(nil, 0), nil) // main archive header
	for _, e := range entries {
		if e.link != "" || e.hard != "" {
			t.Fatal("makeRar: links are not supported")
		}
		var f []byte
		fileFlags := uint64(0x4) // data CRC32 present
		mode := uint64(0o644)
		if e.mode != 0 {
			mode = uint64(e.mode.Perm())
		}
		if e.dir {
			fileFlags, mode = 0x1, 0o755|0o040000
		} else {
			mode |= 0o100000
		}
		f = binary.AppendUvarint(f, fileFlags)
		f = binary.AppendUvarint(f, uint64(len(e.body)))
		f = binary.AppendUvarint(f, mode)
		if !e.dir {
			f = binary.LittleEndian.AppendUint32(f, crc32.ChecksumIEEE([]byte(e.body)))
		}
		f = binary.AppendUvarint(f, 0) // compression: version 0, stored
		f = binary.AppendUvarint(f, 1) // host OS: Unix
		f = binary.AppendUvarint(f, uint64(len(e.name)))
		f = append(f, e.name...)
		data := []byte(e.body)
		if e.dir {
			block(2, 0, f, nil)
		} else {
			block(2, 0x2, f, data)
		}
	}
	block(5, 0, binary.AppendUvarint(nil, 0), nil) // end of archive
	return out.Bytes()
}

// archive makes entries in format (tar.bz2 is refused: it has a fixture).
func archive(t testing.TB, format Format, entries []entry) []byte {
	t.Helper()
	switch format {
	case Zip:
		return makeZip(t, entries)
	case Rar:
		return makeRar(t, entries)
	}
	return compress(t, format, makeTar(t, entries))
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
