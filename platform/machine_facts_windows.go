package platform

import (
	"context"
	"fmt"
	"os"
	"unsafe"

	"github.com/shirou/gopsutil/v4/host"
	"golang.org/x/sys/windows"
)

func systemVolume() string {
	if d := os.Getenv("SystemDrive"); d != "" {
		return d + `\`
	}
	return `C:\`
}

// osVersion is the kernel's version as major.minor.build (10.0.22631):
// RtlGetVersion does not lie to unmanifested programs as GetVersionEx does,
// and the build tells Windows 10 from 11.
func osVersion(*host.InfoStat) string {
	v := windows.RtlGetVersion()
	return fmt.Sprintf("%d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)
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
