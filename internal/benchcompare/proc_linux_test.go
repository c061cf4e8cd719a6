//go:build linux

package benchcompare

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tree is pid and its descendants, from /proc's parent links.
func tree(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		raw, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(raw)[strings.LastIndexByte(string(raw), ')')+1:]
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		children[ppid] = append(children[ppid], child)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeRSSKB is the resident set size of pid and its descendants, in KiB.
func treeRSSKB(pid int) int64 {
	var total int64
	for _, p := range tree(pid) {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb
			}
		}
	}
	return total
}

// treeCPU is the CPU time so far of pid and its descendants: the sum of
// their threads' schedstat run time, as the agent's idle benchmark reads
// it (/proc/<pid>/stat's 10 ms ticks read 0 for an idle process).
func treeCPU(pid int) time.Duration {
	var total int64
	for _, p := range tree(pid) {
		threads, _ := filepath.Glob("/proc/" + strconv.Itoa(p) + "/task/*/schedstat")
		for _, th := range threads {
			raw, err := os.ReadFile(th)
			if err != nil {
				continue // the thread ended
			}
			if f := strings.Fields(string(raw)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += ns
			}
		}
	}
	return time.Duration(total)
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
