package mounts

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"

	kflate "github.com/klauspost/compress/flate"
)

// unpackZip unpacks a zip: directories, files and symbolic links (whose
// target is the entry's content).
func unpackZip(file string, x *extractor) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	defer zr.Close()
	// klauspost's inflater is markedly faster than the standard library's.
	zr.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser { return kflate.NewReader(r) })
	for _, zf := range zr.File {
		if err := unpackZipEntry(zf, x); err != nil {
			return err
		}
	}
	return nil
}

func unpackZipEntry(zf *zip.File, x *extractor) error {
	mode := zf.Mode()
	if mode.IsDir() {
		return x.dir(zf.Name)
	}
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("zip entry %q: %w", zf.Name, err)
	}
	defer rc.Close()
	if mode&fs.ModeSymlink != 0 {
		target, err := io.ReadAll(io.LimitReader(rc, 4096))
		if err != nil {
			return fmt.Errorf("zip entry %q: %w", zf.Name, err)
		}
		return x.symlink(zf.Name, string(target))
	}
	if !mode.IsRegular() {
		_, err := localName(zf.Name)
		return err
	}
	return x.file(zf.Name, mode, rc)
}
