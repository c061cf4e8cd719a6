package platform

// Machine facts are what a runner tells the provisioner about its machine
// when it registers. Each fact is best effort: a machine that hides its
// serial (no root on Linux, a virtual machine) still registers, with the
// fact left empty. Model and serial come from per-OS sources
// (machine_facts_<os>.go); the rest from gopsutil.

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// MachineFacts describes this machine's hardware and OS.
type MachineFacts struct {
	Hostname string
	// OS is Go's name for it: windows, darwin or linux.
	OS        string
	OSVersion string
	// Arch is Go's name for the architecture: amd64 or arm64.
	Arch     string
	Model    string
	CPUs     int
	MemoryMB int64
	// DiskGB is the size of the system volume.
	DiskGB int64
	Serial string
}

// CollectMachineFacts gathers this machine's facts; it fails only when the
// host name, which identifies the machine, cannot be read.
func CollectMachineFacts(ctx context.Context) (MachineFacts, error) {
	f := MachineFacts{OS: runtime.GOOS, Arch: runtime.GOARCH}
	info, err := host.InfoWithContext(ctx)
	if info != nil {
		f.Hostname = info.Hostname
	}
	f.OSVersion = osVersion(info)
	if f.Hostname == "" {
		return f, fmt.Errorf("machine facts: read host name: %w", err)
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil {
		f.CPUs = n
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		f.MemoryMB = int64(vm.Total >> 20)
	}
	if u, err := disk.UsageWithContext(ctx, systemVolume()); err == nil {
		f.DiskGB = int64(u.Total >> 30)
	}
	model, serial := modelAndSerial(ctx)
	f.Model, f.Serial = strings.TrimSpace(model), cleanSerial(serial)
	return f, nil
}

// cleanSerial drops the placeholders firmware vendors leave in the serial
// field: they are shared by many machines and would merge their identities
// in the provisioner.
func cleanSerial(s string) string {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "0", "none", "n/a", "na", "default string", "system serial number",
		"to be filled by o.e.m.", "to be filled by oem", "not specified", "not applicable", "0123456789", "chassis serial number":
		return ""
	}
	return s
}
