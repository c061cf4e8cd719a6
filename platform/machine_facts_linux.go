package platform

import (
	"context"
	"os"
	"strings"

	"github.com/shirou/gopsutil/v4/host"
)

func systemVolume() string { return "/" }

// osVersion is the distribution's or macOS's version (22.04, 14.5).
func osVersion(info *host.InfoStat) string {
	if info == nil {
		return ""
	}
	return strings.TrimSpace(info.PlatformVersion)
}

// modelAndSerial reads the DMI fields the kernel exposes; product_serial is
// readable by root only, which the runner service is.
func modelAndSerial(context.Context) (model, serial string) {
	read := func(name string) string {
		b, err := os.ReadFile("/sys/class/dmi/id/" + name)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return read("product_name"), read("product_serial")
}
