package platform

import "encoding/binary"

// smbiosSystemInfo returns the product name and serial number of the
// SMBIOS System Information structure (type 1) in a raw table, as Windows'
// GetSystemFirmwareTable('RSMB') returns it: an 8-byte header (calling
// method, major, minor, DMI revision, uint32 length), then the structures.
func smbiosSystemInfo(raw []byte) (product, serial string) {
	if len(raw) < 8 {
		return "", ""
	}
	n := int(binary.LittleEndian.Uint32(raw[4:8]))
	data := raw[8:]
	if n < len(data) {
		data = data[:n]
	}
	for len(data) >= 4 {
		typ, size := data[0], int(data[1])
		if size < 4 || size > len(data) {
			return "", ""
		}
		formatted := data[:size]
		// The strings follow the formatted area and end with an empty one.
		end := size
		for end+1 < len(data) && (data[end] != 0 || data[end+1] != 0) {
			end++
		}
		strs := smbiosStrings(data[size:min(end+1, len(data))])
		if typ == 1 {
			str := func(off int) string {
				if off >= len(formatted) {
					return ""
				}
				i := int(formatted[off])
				if i == 0 || i > len(strs) {
					return ""
				}
				return strs[i-1]
			}
			return str(0x05), str(0x07)
		}
		if typ == 127 {
			break
		}
		if end+2 > len(data) {
			break
		}
		data = data[end+2:]
	}
	return "", ""
}

// smbiosStrings splits a NUL-separated string set.
func smbiosStrings(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i == start {
				break
			}
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) && b[len(b)-1] != 0 {
		out = append(out, string(b[start:]))
	}
	return out
}
