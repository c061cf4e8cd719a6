package platform

import (
	"context"
	"os"
	"strings"
)

func systemVolume() string { return "/" }

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
