//go:build windows

package platform

// The processes of a Windows task user: found by their token's user (a
// task's detached processes too, not only the tree the agent started), and
// terminated in rounds until none is left.

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// processes lists the processes whose token's user is the account.
func (u *TaskUser) processes() ([]int, error) {
	var pids []int
	err := eachProcessOf(u.sys.sid, func(pid uint32, _ windows.Handle) { pids = append(pids, int(pid)) })
	return pids, err
}

// eachProcessOf calls f with each process (opened for termination) of
// the account sid.
func eachProcessOf(sid *windows.SID, f func(pid uint32, h windows.Handle)) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return fmt.Errorf("snapshot processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	self := windows.GetCurrentProcessId()
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == 0 || e.ProcessID == self {
			continue
		}
		h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, e.ProcessID)
		if err != nil {
			continue // gone, or a protected system process
		}
		if processUserIs(h, sid) {
			f(e.ProcessID, h)
		}
		windows.CloseHandle(h)
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return fmt.Errorf("walk process snapshot: %w", err)
	}
	return nil
}

func processUserIs(h windows.Handle, sid *windows.SID) bool {
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return false
	}
	defer tok.Close()
	user, err := tok.GetTokenUser()
	return err == nil && user.User.Sid.Equals(sid)
}

// killProcesses terminates, in rounds, every process of the account until
// a round finds none.
func (u *TaskUser) killProcesses() (int, error) {
	killed := 0
	for round := 0; round < 50; round++ {
		found := 0
		var errs []error
		err := eachProcessOf(u.sys.sid, func(pid uint32, h windows.Handle) {
			found++
			if err := windows.TerminateProcess(h, killedExitCode); err != nil {
				errs = append(errs, fmt.Errorf("terminate %d: %w", pid, err))
				return
			}
			_, _ = windows.WaitForSingleObject(h, 1000)
			killed++
		})
		if err != nil {
			return killed, err
		}
		if found == 0 {
			return killed, nil
		}
		if len(errs) > 0 && round == 49 {
			return killed, errors.Join(errs...)
		}
		time.Sleep(time.Duration(round+1) * 10 * time.Millisecond)
	}
	pids, _ := u.processes()
	if len(pids) == 0 {
		return killed, nil
	}
	return killed, fmt.Errorf("processes %v still run after 50 rounds of kills", pids)
}
