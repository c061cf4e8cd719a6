package mounts

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// unpackTar unpacks a compressed tar: directories, files, symbolic and
// hard links; device nodes and FIFOs are skipped, as archiver skips them.
func unpackTar(format Format, file string, x *extractor) error {
	f, err := openArchive(file)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader
	switch format {
	case TarGz:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		r = gz
	case TarBz2:
		r = bzip2.NewReader(br)
	case TarXz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return fmt.Errorf("xz: %w", err)
		}
		r = xr
	case TarZst:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(h.Name)
		case tar.TypeReg, tar.TypeGNUSparse:
			err = x.file(h.Name, h.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, h.Linkname)
		default:
			// Devices, FIFOs and pax/GNU metadata entries: nothing to write,
			// but a name that escapes is still refused.
			_, err = localName(h.Name)
		}
		if err != nil {
			return err
		}
	}
}
