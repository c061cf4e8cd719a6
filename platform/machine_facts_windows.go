package platform

import (
	"context"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

func systemVolume() string {
	if d := os.Getenv("SystemDrive"); d != "" {
		return d + `\`
	}
	return `C:\`
}

var procGetSystemFirmwareTable = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemFirmwareTable")

// rsmb is the 'RSMB' firmware table provider: the raw SMBIOS table.
const rsmb = 'R'<<24 | 'S'<<16 | 'M'<<8 | 'B'

// modelAndSerial reads the SMBIOS System Information structure, the same
// source as WMI's Win32_ComputerSystemProduct, without starting WMI.
func modelAndSerial(context.Context) (model, serial string) {
	if procGetSystemFirmwareTable.Find() != nil {
		return "", ""
	}
	size, _, _ := procGetSystemFirmwareTable.Call(rsmb, 0, 0, 0)
	if size == 0 || size > 16<<20 {
		return "", ""
	}
	buf := make([]byte, size)
	got, _, _ := procGetSystemFirmwareTable.Call(rsmb, 0, uintptr(unsafe.Pointer(&buf[0])), size)
	if got == 0 || got > size {
		return "", ""
	}
	return smbiosSystemInfo(buf[:got])
}
