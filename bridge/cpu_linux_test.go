package bridge

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuUsed is the CPU time (user and system) this process and the local
// MariaDB server have used so far, so that a benchmark can report what a
// request costs apart from what else the machine runs.
func cpuUsed() (self, server time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, serverCPU()
}

// processCPU is the CPU time process pid has used, from /proc; 0 when it
// cannot be read.
func processCPU(pid int) time.Duration {
	return statCPU(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
}

// serverCPU reads the CPU time of the mariadbd (or mysqld) process from
// /proc; 0 when there is none or it cannot be read.
func serverCPU() time.Duration {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		name, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		if n := strings.TrimSpace(string(name)); n != "mariadbd" && n != "mysqld" {
			continue
		}
		return statCPU(filepath.Join(filepath.Dir(c), "stat"))
	}
	return 0
}

// statCPU reads utime + stime from a /proc/<pid>/stat file.
func statCPU(path string) time.Duration {
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: utime and stime are the
	// 12th and 13th, in clock ticks (100 per second on Linux).
	rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
