package platform

// The processes of an account on Linux, found by uid in /proc and killed
// through a pidfd: the pid read from /proc could name another process by
// the time it is signalled (the first one died, the pid was given again),
// so the process is pinned first (pidfd_open), its uid read again, and the
// signal sent to what was pinned. Kernels before 5.3 have no pidfd: the
// uid is read again just before kill(2), which narrows the race but cannot
// close it. The uid scan backs up the task's cgroup (taskuser_cgroup_linux.go)
// and replaces it where cgroups are not available.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// procIDs is what /proc/PID/status says of a process's ids: the real,
// effective, saved and file-system uids and gids; ok is false when the
// process is gone or a zombie (already dead, waiting for its parent).
func procIDs(pid string) (uids, gids []uint32, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return nil, nil, false
	}
	parse := func(v string) []uint32 {
		var ids []uint32
		for _, f := range strings.Fields(v) {
			if n, err := strconv.ParseUint(f, 10, 32); err == nil {
				ids = append(ids, uint32(n))
			}
		}
		return ids
	}
	for line := range strings.Lines(string(b)) {
		if v, found := strings.CutPrefix(line, "Uid:"); found {
			uids = parse(v)
		}
		if v, found := strings.CutPrefix(line, "Gid:"); found {
			gids = parse(v)
		}
		if v, found := strings.CutPrefix(line, "State:"); found && strings.HasPrefix(strings.TrimSpace(v), "Z") {
			return nil, nil, false
		}
	}
	return uids, gids, len(uids) >= 3
}

// procHasUID says whether the live process pid has uid among its uids.
func procHasUID(pid int, uid uint32) bool {
	uids, _, ok := procIDs(strconv.Itoa(pid))
	if !ok {
		return false
	}
	for _, id := range uids {
		if id == uid {
			return true
		}
	}
	return false
}

// allPIDs lists the entries of /proc that are processes.
func allPIDs() ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, e.Name())
		}
	}
	return pids, nil
}

// processesOf lists the live processes with uid as a real, effective,
// saved or file-system uid.
func processesOf(uid uint32) ([]int, error) {
	names, err := allPIDs()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		pid, _ := strconv.Atoi(name)
		if procHasUID(pid, uid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// processIDTraces are the uids and gids within r of the live processes.
func processIDTraces(r TaskUserIDs) (map[uint32]bool, error) {
	names, err := allPIDs()
	if err != nil {
		return nil, err
	}
	ids := map[uint32]bool{}
	for _, name := range names {
		uids, gids, ok := procIDs(name)
		if ok {
			addIDsIn(ids, r, uids...)
			addIDsIn(ids, r, gids...)
		}
	}
	return ids, nil
}

// killProcessOf sends SIGKILL to pid if it is (still) a process of uid;
// killed is false when it was not, or was gone.
func killProcessOf(pid int, uid uint32) (killed bool, err error) {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return false, nil
	case errors.Is(err, unix.ENOSYS):
		// No pidfd (kernel before 5.3): check, then kill at once.
		if !procHasUID(pid, uid) {
			return false, nil
		}
		return signalled(syscall.Kill(pid, syscall.SIGKILL), pid)
	case err != nil:
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// fd pins the process that had pid when it was opened. If that one
	// still lives, /proc/pid is it; if it died since, the signal through
	// fd fails (ESRCH) whatever process has the pid now.
	if !procHasUID(pid, uid) {
		return false, nil
	}
	return signalled(unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0), pid)
}

// signalled turns a signal's result into killProcessOf's.
func signalled(err error, pid int) (bool, error) {
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	return true, nil
}
