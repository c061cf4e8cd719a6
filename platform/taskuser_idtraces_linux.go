package platform

// What carries an id on Linux, for the allocation of task account ids
// (taskuser_idalloc_unix.go): accounts and groups through NSS (getent, so
// that LDAP or SSSD accounts count; /etc/passwd and /etc/group where
// getent is missing), processes, System V IPC objects, files in the
// shared directories, and the subordinate id ranges of /etc/subuid and
// /etc/subgid (a rootless container of their owner runs as those ids).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

var osIDChecks = idChecks{traces: linuxIDTraces, free: linuxIDFree}

func linuxIDTraces(r TaskUserIDs) (map[uint32]bool, error) {
	ids := map[uint32]bool{}
	var errs []error
	for _, db := range []string{"passwd", "group"} {
		got, err := accountIDs(db, r)
		mergeIDs(ids, got, err, &errs)
	}
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		got, err := subordinateIDs(file, r)
		mergeIDs(ids, got, err, &errs)
	}
	got, err := processIDTraces(r)
	mergeIDs(ids, got, err, &errs)
	got, err = ipcIDTraces(r)
	mergeIDs(ids, got, err, &errs)
	// The walk's errors are not the allocation's: what it could not reach
	// (a chain of directories deeper than it goes) lies below a directory
	// it saw, whose owner counts.
	got, _ = idsInSharedDirs(sharedTaskDirs, r)
	mergeIDs(ids, got, nil, &errs)
	return ids, errors.Join(errs...)
}

// accountIDs are the ids within r of the accounts (db passwd) or groups
// (db group) NSS lists.
func accountIDs(db string, r TaskUserIDs) (map[uint32]bool, error) {
	var text []byte
	var err error
	if _, lookErr := exec.LookPath("getent"); lookErr == nil {
		text, err = exec.Command("getent", db).Output()
		if err != nil {
			return nil, fmt.Errorf("getent %s: %w", db, err)
		}
	} else if text, err = os.ReadFile("/etc/" + db); err != nil {
		return nil, err
	}
	ids := map[uint32]bool{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		// name:password:ID:...
		f := strings.SplitN(sc.Text(), ":", 4)
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			addIDsIn(ids, r, uint32(id))
		}
	}
	return ids, sc.Err()
}

// subordinateIDs are the ids within r of the ranges (name:first:count) of
// an /etc/subuid or /etc/subgid file.
func subordinateIDs(file string, r TaskUserIDs) (map[uint32]bool, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ids := map[uint32]bool{}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		lo, hi := max(first, uint64(r.First)), min(first+count-1, uint64(r.Last))
		for id := lo; count > 0 && id <= hi; id++ {
			ids[uint32(id)] = true
		}
	}
	return ids, nil
}

// linuxIDFree asks NSS about one id as account and as group: directory
// services often list nothing (SSSD's enumerate = false) but answer for
// one id.
func linuxIDFree(id uint32) (bool, error) {
	if _, err := exec.LookPath("getent"); err != nil {
		return true, nil // no NSS tool: the files were read
	}
	for _, db := range []string{"passwd", "group"} {
		err := exec.Command("getent", db, strconv.FormatUint(uint64(id), 10)).Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return false, nil
		case errors.As(err, &exit) && exit.ExitCode() == 2: // not found
		default:
			return false, fmt.Errorf("getent %s %d: %w", db, id, err)
		}
	}
	return true, nil
}
