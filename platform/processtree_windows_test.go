//go:build windows

package platform

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

const testDeadline = 20 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobPids lists the processes currently in the tree's job object.
func jobPids(t *testing.T, tree *ProcessTree) []uint32 {
	t.Helper()
	var list struct {
		Assigned uint32
		InList   uint32
		Pids     [64]uintptr
	}
	tree.sys.mu.Lock()
	defer tree.sys.mu.Unlock()
	if tree.sys.job == 0 {
		return nil
	}
	err := windows.QueryInformationJobObject(tree.sys.job, windows.JobObjectBasicProcessIdList,
		uintptr(unsafe.Pointer(&list)), uint32(unsafe.Sizeof(list)), nil)
	if err != nil {
		t.Fatalf("query job process list: %v", err)
	}
	pids := make([]uint32, 0, list.InList)
	for _, p := range list.Pids[:list.InList] {
		pids = append(pids, uint32(p))
	}
	return pids
}

// running reports whether pid is a process that has not exited.
func running(pid uint32) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false
	}
	return code == 259 // STILL_ACTIVE
}

// startCmd starts `cmd.exe /c line` as a process tree.
func startCmd(t *testing.T, line string) *ProcessTree {
	t.Helper()
	cmd := exec.Command("cmd.exe")
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd.exe /d /c ` + line}
	tree, err := StartProcessTree(cmd)
	if err != nil {
		t.Fatalf("StartProcessTree: %v", err)
	}
	t.Cleanup(func() { _ = tree.Close() })
	return tree
}

// A child started by the very first instruction of the command must be in
// the job: the process is suspended until it has been assigned.
func TestWindowsKillRemovesGrandchild(t *testing.T) {
	tree := startCmd(t, `start /b ping -n 300 127.0.0.1 >nul & ping -n 300 127.0.0.1 >nul`)
	var pids []uint32
	waitFor(t, "three processes in the job", func() bool {
		pids = jobPids(t, tree)
		return len(pids) >= 3
	})
	if err := tree.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if code, err := tree.Wait(); err != nil || code != killedExitCode {
		t.Fatalf("Wait after Kill = (%d, %v), want (%d, nil)", code, err, killedExitCode)
	}
	for _, pid := range pids {
		waitFor(t, "process to exit", func() bool { return !running(pid) })
	}
}

func TestWindowsCloseKillsLeftovers(t *testing.T) {
	tree := startCmd(t, `start /b ping -n 300 127.0.0.1 >nul`)
	var pids []uint32
	waitFor(t, "the background child in the job", func() bool {
		pids = jobPids(t, tree)
		return len(pids) >= 1 && !running(uint32(tree.Pid()))
	})
	if _, err := tree.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := tree.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		waitFor(t, "leftover process to exit", func() bool { return !running(pid) })
	}
}

func TestWindowsStopKills(t *testing.T) {
	tree := startCmd(t, `ping -n 300 127.0.0.1 >nul`)
	waitFor(t, "ping in the job", func() bool { return len(jobPids(t, tree)) >= 2 })
	// Without a shared console the interrupt may fail; Stop must kill anyway.
	_ = tree.Stop(100 * time.Millisecond)
	select {
	case <-tree.Done():
	case <-time.After(testDeadline):
		t.Fatal("main process still running after Stop")
	}
	waitFor(t, "job to be empty", func() bool { return len(jobPids(t, tree)) == 0 })
}

func TestWindowsExitCodes(t *testing.T) {
	for _, want := range []int{0, 3, 255} {
		tree := startCmd(t, `exit `+strconv.Itoa(want))
		code, err := tree.Wait()
		if err != nil || code != want {
			t.Errorf("exit %d: Wait = (%d, %v)", want, code, err)
		}
	}
}
