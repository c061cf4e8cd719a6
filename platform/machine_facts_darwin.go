package platform

import (
	"context"
	"os/exec"
	"regexp"
	"strings"

	"github.com/shirou/gopsutil/v4/host"
	"golang.org/x/sys/unix"
)

func systemVolume() string { return "/" }

// osVersion is the distribution's or macOS's version (22.04, 14.5).
func osVersion(info *host.InfoStat) string {
	if info == nil {
		return ""
	}
	return strings.TrimSpace(info.PlatformVersion)
}

var ioregSerial = regexp.MustCompile(`"IOPlatformSerialNumber"\s*=\s*"([^"]*)"`)

// modelAndSerial reads hw.model (e.g. Macmini9,1) and the platform serial
// number from the I/O registry; IOKit itself needs cgo, ioreg does not.
func modelAndSerial(ctx context.Context) (model, serial string) {
	model, _ = unix.Sysctl("hw.model")
	out, err := exec.CommandContext(ctx, "/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice").Output()
	if err == nil {
		if m := ioregSerial.FindSubmatch(out); m != nil {
			serial = string(m[1])
		}
	}
	return model, serial
}
