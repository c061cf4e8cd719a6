//go:build !linux

package bridge

import "time"

// cpuUsed is measured on Linux only.
func cpuUsed() (self, server time.Duration) { return 0, 0 }

// processCPU is measured on Linux only.
func processCPU(int) time.Duration { return 0 }
