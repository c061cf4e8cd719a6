// Package machofat writes a universal ("fat") Mach-O file from thin ones,
// as Apple's lipo -create does, so that the macOS pkg's single runner
// binary serves Intel and Apple silicon Macs and can be built on Linux.
// The format is <mach-o/fat.h>: a big-endian header (magic 0xcafebabe,
// count), one fat_arch per slice (CPU type and subtype, offset, size,
// alignment as a power of two), then each slice at its aligned offset.
// debug/macho.OpenFat reads it back.
package machofat

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"fmt"
	"io"
)

// sliceAlign is the alignment of each slice: 2^14, the arm64 page size
// (lipo uses it for arm64, and it is a multiple of x86_64's 4 KiB).
const sliceAlign = 14

// Write writes a fat Mach-O holding the thin Mach-O files slices, in the
// order given. Each must be a thin Mach-O of a different CPU type.
func Write(w io.Writer, slices ...[]byte) error {
	if len(slices) == 0 {
		return fmt.Errorf("machofat: no slices")
	}
	type arch struct{ cpu, sub, offset, size, align uint32 }
	archs := make([]arch, len(slices))
	seen := map[macho.Cpu]bool{}
	offset := uint64(8 + 20*len(slices))
	for i, s := range slices {
		f, err := macho.NewFile(bytes.NewReader(s))
		if err != nil {
			return fmt.Errorf("machofat: slice %d is not a thin Mach-O file: %w", i, err)
		}
		if seen[f.Cpu] {
			return fmt.Errorf("machofat: two slices for CPU %v", f.Cpu)
		}
		seen[f.Cpu] = true
		offset = (offset + 1<<sliceAlign - 1) &^ (1<<sliceAlign - 1)
		if offset+uint64(len(s)) > 1<<32-1 {
			return fmt.Errorf("machofat: slices exceed the 4 GiB a fat file can address")
		}
		archs[i] = arch{cpu: uint32(f.Cpu), sub: f.SubCpu, offset: uint32(offset), size: uint32(len(s)), align: sliceAlign}
		offset += uint64(len(s))
	}
	var hdr bytes.Buffer
	_ = binary.Write(&hdr, binary.BigEndian, []uint32{macho.MagicFat, uint32(len(slices))})
	for _, a := range archs {
		_ = binary.Write(&hdr, binary.BigEndian, a)
	}
	written := uint64(hdr.Len())
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("machofat: write header: %w", err)
	}
	for i, s := range slices {
		if pad := uint64(archs[i].offset) - written; pad > 0 {
			if _, err := w.Write(make([]byte, pad)); err != nil {
				return fmt.Errorf("machofat: write padding: %w", err)
			}
			written += pad
		}
		if _, err := w.Write(s); err != nil {
			return fmt.Errorf("machofat: write slice %d: %w", i, err)
		}
		written += uint64(len(s))
	}
	return nil
}
