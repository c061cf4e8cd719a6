//go:build linux || darwin

package platform

// Allocation of task account ids (TaskUserIDs): a machine-wide counter
// in a root-only file, advanced under a lock before the account is made,
// so that ids go round the whole range before one comes back, whichever
// runner (several may share a machine) or crash came between. An id is
// skipped while anything still carries it: an account or group, a
// process, a SysV IPC object, a file in the shared directories, a
// container's subordinate id range (Linux). The checks make a wrapped
// counter, or a counter file that was lost, safe; the counter makes an id
// come back as late as possible. docs/operations.md ("Task users").

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// taskIDFile holds the next id to try, in decimal: the machine's, whatever
// the runner's data directory (Linux /var/lib/labrunner/task-user-ids).
var taskIDFile = filepath.Join(defaultDataDir, "task-user-ids")

// taskIDMu serialises this process's allocations; the file's lock those
// of other processes.
var taskIDMu sync.Mutex

// idChecks are the OS's answers on ids: traces lists the ids of a range
// that something on the machine carries (one pass over the machine);
// free confirms one id against directory services that cannot be listed.
type idChecks struct {
	traces func(r TaskUserIDs) (map[uint32]bool, error)
	free   func(id uint32) (bool, error)
}

// allocateTaskID picks the id of a new account in r and calls create with
// it, holding the machine-wide lock until create returns.
func allocateTaskID(r TaskUserIDs, create func(id uint32) error) (uint32, error) {
	return allocateTaskIDIn(taskIDFile, r, osIDChecks, create)
}

func allocateTaskIDIn(file string, r TaskUserIDs, checks idChecks, create func(id uint32) error) (uint32, error) {
	taskIDMu.Lock()
	defer taskIDMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return 0, fmt.Errorf("task account ids: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("task account ids: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("task account ids: lock %s: %w", file, err)
	}
	next := readNextTaskID(f, r)
	used, err := checks.traces(r)
	if err != nil {
		return 0, fmt.Errorf("task account ids: look for ids in use: %w", err)
	}
	for i := range r.Count() {
		id := r.First + (next-r.First+i)%r.Count()
		if used[id] {
			continue
		}
		free, err := checks.free(id)
		if err != nil {
			return 0, fmt.Errorf("task account ids: %w", err)
		}
		if !free {
			continue
		}
		// Written before the account exists: a crash in between loses an
		// id, never gives one twice.
		if err := writeNextTaskID(f, r, id); err != nil {
			return 0, fmt.Errorf("task account ids: record %s: %w", file, err)
		}
		if err := create(id); err != nil {
			return 0, err
		}
		return id, nil
	}
	return 0, fmt.Errorf("task account ids: every id of %s is taken or still carried by a file, process or IPC object; widen taskUserIds or remove what they left", r)
}

// readNextTaskID is the id recorded in f, or r.First when there is none
// (a new machine, a changed range or a damaged file: the checks on each
// id keep that safe).
func readNextTaskID(f *os.File, r TaskUserIDs) uint32 {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err != nil {
		return r.First
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || uint32(n) < r.First || uint32(n) > r.Last {
		return r.First
	}
	return uint32(n)
}

// writeNextTaskID records the id after id (r.First after r.Last).
func writeNextTaskID(f *os.File, r TaskUserIDs, id uint32) error {
	next := r.First
	if id < r.Last {
		next = id + 1
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.FormatUint(uint64(next), 10)+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// addIDsIn adds to ids those of list within r.
func addIDsIn(ids map[uint32]bool, r TaskUserIDs, list ...uint32) {
	for _, id := range list {
		if id >= r.First && id <= r.Last {
			ids[id] = true
		}
	}
}

// mergeIDs adds src to dst, or records err.
func mergeIDs(dst map[uint32]bool, src map[uint32]bool, err error, errs *[]error) {
	if err != nil {
		*errs = append(*errs, err)
	}
	for id := range src {
		dst[id] = true
	}
}
