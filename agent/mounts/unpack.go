package mounts

// Unpacking a cached archive into a directory, by the payload's format.
// The formats and their libraries: zip (archive/zip, inflating with
// github.com/klauspost/compress/flate), tar.gz
// (github.com/klauspost/compress/gzip), tar.bz2 (compress/bzip2), tar.xz (github.com/ulikunitz/xz),
// tar.zst (github.com/klauspost/compress/zstd), rar
// (github.com/nwaples/rardecode/v2). generic-worker v44 uses
// github.com/mholt/archiver/v3, which wraps the same decoders.

import (
	"fmt"
	"os"
)

// UnpackError is an archive that cannot be unpacked: a task failure.
type UnpackError struct {
	Archive string
	Format  Format
	Err     error
}

func (e *UnpackError) Error() string {
	return fmt.Sprintf("unpack %s as %s: %v", e.Archive, e.Format, e.Err)
}
func (e *UnpackError) Unwrap() error { return e.Err }

// Unpack unpacks the archive file into dir, which must exist.
func Unpack(format Format, file, dir string) error {
	x := &extractor{root: dir}
	var err error
	switch format {
	case Zip:
		err = unpackZip(file, x)
	case Rar:
		err = unpackRar(file, x)
	case TarGz, TarBz2, TarXz, TarZst:
		err = unpackTar(format, file, x)
	default:
		return fmt.Errorf("unpack %s: unknown format %q; use one of rar, tar.bz2, tar.gz, tar.xz, tar.zst, zip", file, format)
	}
	if err != nil {
		return &UnpackError{Archive: file, Format: format, Err: err}
	}
	return nil
}

func openArchive(file string) (*os.File, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	return f, nil
}
