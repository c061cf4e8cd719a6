package platform

import (
	"encoding/binary"
	"os"
	"runtime"
	"testing"
)

func TestCollectMachineFactsDescribesThisMachine(t *testing.T) {
	f, err := CollectMachineFacts(testCtx(t))
	if err != nil {
		t.Fatalf("CollectMachineFacts: %v", err)
	}
	host, _ := os.Hostname()
	if f.Hostname != host {
		t.Errorf("hostname %q, want %q", f.Hostname, host)
	}
	if f.OS != runtime.GOOS || f.Arch != runtime.GOARCH {
		t.Errorf("os/arch %s/%s, want %s/%s", f.OS, f.Arch, runtime.GOOS, runtime.GOARCH)
	}
	if f.CPUs <= 0 || f.MemoryMB <= 0 || f.DiskGB <= 0 {
		t.Errorf("cpus %d, memory %d MB, disk %d GB: want all positive", f.CPUs, f.MemoryMB, f.DiskGB)
	}
	if f.OSVersion == "" {
		t.Errorf("no OS version")
	}
}

func TestCleanSerialDropsFirmwarePlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		"C02XK0ABJGH5":           "C02XK0ABJGH5",
		"  G4NX1234 \n":          "G4NX1234",
		"To Be Filled By O.E.M.": "",
		"System Serial Number":   "",
		"Default string":         "",
		"0":                      "",
		"":                       "",
	} {
		if got := cleanSerial(in); got != want {
			t.Errorf("cleanSerial(%q) = %q, want %q", in, got, want)
		}
	}
}

// smbiosStruct encodes one SMBIOS structure: formatted area then strings.
func smbiosStruct(typ byte, formatted []byte, strs ...string) []byte {
	b := []byte{typ, byte(4 + len(formatted)), 0x01, 0x00}
	b = append(b, formatted...)
	if len(strs) == 0 {
		return append(b, 0, 0)
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

func rawSMBIOS(structs ...[]byte) []byte {
	var data []byte
	for _, s := range structs {
		data = append(data, s...)
	}
	hdr := []byte{0, 3, 4, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(data)))
	return append(hdr, data...)
}

func TestSMBIOSSystemInfo(t *testing.T) {
	bios := smbiosStruct(0, []byte{1, 2, 0, 0}, "Intel Corp.", "WSADL357.0088")
	oem := smbiosStruct(11, []byte{0}) // no strings: ends with two NULs
	// Type 1: manufacturer 1, product 2, version 3, serial 4.
	system := smbiosStruct(1, []byte{1, 2, 3, 4}, "Intel(R) Client Systems", "NUC12WSKi7", "M46422-303", "G6WS2410017B")
	end := smbiosStruct(127, nil)
	product, serial := smbiosSystemInfo(rawSMBIOS(bios, oem, system, end))
	if product != "NUC12WSKi7" || serial != "G6WS2410017B" {
		t.Fatalf("product %q serial %q", product, serial)
	}
	noSerial := smbiosStruct(1, []byte{1, 2, 0, 0}, "QEMU", "Standard PC (Q35 + ICH9, 2009)")
	if p, s := smbiosSystemInfo(rawSMBIOS(noSerial, end)); p != "Standard PC (Q35 + ICH9, 2009)" || s != "" {
		t.Fatalf("without serial: %q %q", p, s)
	}
	full := rawSMBIOS(bios, system, end)
	for i := range full {
		smbiosSystemInfo(full[:i]) // truncated tables must not panic
	}
	if p, s := smbiosSystemInfo(rawSMBIOS(bios, end)); p != "" || s != "" {
		t.Fatalf("no type 1 structure gave %q %q", p, s)
	}
}
