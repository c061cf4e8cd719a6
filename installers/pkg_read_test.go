package installers

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// readXar opens a flat package the way Installer does: the xar header,
// the zlib TOC whose SHA-1 is the heap's first 20 bytes, and each file's
// data with its archived SHA-1 checked. It returns the files by name.
func readXar(b []byte) (map[string][]byte, error) {
	var hdr struct {
		Magic             uint32
		Size, Version     uint16
		TOCLen, TOCRawLen uint64
		Cksum             uint32
	}
	if err := binary.Read(bytes.NewReader(b), binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("xar header: %w", err)
	}
	if hdr.Magic != 0x78617221 || hdr.Size != 28 || hdr.Version != 1 || hdr.Cksum != 1 {
		return nil, fmt.Errorf("xar header %+v: want magic xar!, size 28, version 1, SHA-1 checksums", hdr)
	}
	tocEnd := uint64(hdr.Size) + hdr.TOCLen
	if tocEnd > uint64(len(b)) {
		return nil, fmt.Errorf("xar TOC runs past the end")
	}
	ztoc := b[hdr.Size:tocEnd]
	zr, err := zlib.NewReader(bytes.NewReader(ztoc))
	if err != nil {
		return nil, fmt.Errorf("xar TOC: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || uint64(len(raw)) != hdr.TOCRawLen {
		return nil, fmt.Errorf("xar TOC: %d bytes (%v), header says %d", len(raw), err, hdr.TOCRawLen)
	}
	var toc struct {
		Checksum struct {
			Style  string `xml:"style,attr"`
			Offset uint64 `xml:"offset"`
			Size   uint64 `xml:"size"`
		} `xml:"toc>checksum"`
		Files []struct {
			Name string `xml:"name"`
			Type string `xml:"type"`
			Data struct {
				Length   uint64 `xml:"length"`
				Offset   uint64 `xml:"offset"`
				Encoding struct {
					Style string `xml:"style,attr"`
				} `xml:"encoding"`
				Archived struct {
					Style string `xml:"style,attr"`
					Sum   string `xml:",chardata"`
				} `xml:"archived-checksum"`
			} `xml:"data"`
		} `xml:"toc>file"`
	}
	if err := xml.Unmarshal(raw, &toc); err != nil {
		return nil, fmt.Errorf("xar TOC XML: %w", err)
	}
	heap := b[tocEnd:]
	sum := sha1.Sum(ztoc)
	if toc.Checksum.Style != "sha1" || toc.Checksum.Size != 20 || toc.Checksum.Offset+20 > uint64(len(heap)) ||
		!bytes.Equal(heap[toc.Checksum.Offset:toc.Checksum.Offset+20], sum[:]) {
		return nil, fmt.Errorf("xar TOC checksum does not match the TOC")
	}
	files := map[string][]byte{}
	for _, f := range toc.Files {
		d := f.Data
		if f.Type != "file" || d.Offset+d.Length > uint64(len(heap)) {
			return nil, fmt.Errorf("xar entry %s: type %s, data %d+%d of %d", f.Name, f.Type, d.Offset, d.Length, len(heap))
		}
		if d.Encoding.Style != "application/octet-stream" {
			return nil, fmt.Errorf("xar entry %s: encoding %s, want stored", f.Name, d.Encoding.Style)
		}
		data := heap[d.Offset : d.Offset+d.Length]
		s := sha1.Sum(data)
		if d.Archived.Style != "sha1" || hex.EncodeToString(s[:]) != strings.TrimSpace(d.Archived.Sum) {
			return nil, fmt.Errorf("xar entry %s: archived checksum does not match", f.Name)
		}
		files[f.Name] = data
	}
	return files, nil
}

// cpioEntry is one entry of an odc cpio archive.
type cpioEntry struct {
	Name     string
	Mode     uint32 // with the file type bits
	UID, GID int
	Data     []byte
}

// readCpioGz reads a gzip'd odc ("070707") cpio archive, as pkg
// Payload and Scripts are.
func readCpioGz(b []byte) ([]cpioEntry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var out []cpioEntry
	for len(raw) >= 76 {
		h := string(raw[:76])
		if h[:6] != "070707" {
			return nil, fmt.Errorf("cpio: bad magic %q", h[:6])
		}
		num := func(from, n int) uint64 { v, _ := strconv.ParseUint(h[from:from+n], 8, 64); return v }
		mode, uid, gid := num(18, 6), num(24, 6), num(30, 6)
		namesize, filesize := num(59, 6), num(65, 11)
		if uint64(len(raw)) < 76+namesize+filesize {
			return nil, fmt.Errorf("cpio: entry runs past the end")
		}
		name := strings.TrimSuffix(string(raw[76:76+namesize]), "\x00")
		data := raw[76+namesize : 76+namesize+filesize]
		raw = raw[76+namesize+filesize:]
		if name == "TRAILER!!!" {
			return out, nil
		}
		out = append(out, cpioEntry{Name: name, Mode: uint32(mode), UID: int(uid), GID: int(gid), Data: data})
	}
	return nil, fmt.Errorf("cpio: no trailer")
}
