package mounts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/nwaples/rardecode/v2"
)

// unpackRar unpacks a rar (versions 1.5 to 5): directories, files, and
// symbolic and hard links.
func unpackRar(file string, x *extractor) error {
	f, err := openArchive(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rr, err := rardecode.NewReader(f)
	if err != nil {
		return fmt.Errorf("rar: %w", err)
	}
	for {
		h, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rar: %w", err)
		}
		switch {
		case h.IsDir:
			err = x.dir(h.Name)
		case h.LinkType == rardecode.LinkTypeHardLink, h.LinkType == rardecode.LinkTypeFileCopy:
			err = x.hardlink(h.Name, h.LinkTarget)
		case h.LinkType != rardecode.LinkTypeNone, h.Mode()&fs.ModeSymlink != 0:
			target := h.LinkTarget
			if target == "" {
				// RAR 1.5-4 keeps a Unix link's target as the entry's data.
				b, rerr := io.ReadAll(io.LimitReader(rr, 4096))
				if rerr != nil {
					return fmt.Errorf("rar entry %q: %w", h.Name, rerr)
				}
				target = string(b)
			}
			err = x.symlink(h.Name, target)
		default:
			err = x.file(h.Name, h.Mode(), rr)
		}
		if err != nil {
			return err
		}
	}
}
