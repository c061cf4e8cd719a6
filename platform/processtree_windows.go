//go:build windows

package platform

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// treeSys is the Windows side of a ProcessTree: a Job Object holding every
// process of the tree, and the console process group id for CTRL_BREAK.
type treeSys struct {
	pid uint32

	mu  sync.Mutex
	job windows.Handle // 0 once closed
}

// killedExitCode is what TerminateJobObject gives the killed processes; 1
// is also what generic-worker's `taskkill /f /t` leaves behind.
const killedExitCode = 1

func startTree(cmd *exec.Cmd) (*treeSys, error) {
	job, err := newKillOnCloseJob()
	if err != nil {
		return nil, err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Suspended, so that the command cannot start a child before it is in
	// the job (a child started earlier would escape it); its own console
	// process group, so that CTRL_BREAK reaches the tree and not the agent.
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP
	if err := cmd.Start(); err != nil {
		windows.CloseHandle(job)
		return nil, err
	}
	pid := uint32(cmd.Process.Pid)
	if err := assignToJob(job, pid); err != nil {
		_ = cmd.Process.Kill()
		windows.CloseHandle(job)
		return nil, err
	}
	if err := resumeProcess(pid); err != nil {
		// Closing the kill-on-close job kills the suspended process.
		windows.CloseHandle(job)
		return nil, err
	}
	return &treeSys{pid: pid, job: job}, nil
}

func newKillOnCloseJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("create job object: %w", err)
	}
	// Kill-on-close means that if the agent dies, Windows kills the tree
	// when the last handle to the job goes away.
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, fmt.Errorf("set job object kill-on-close: %w", err)
	}
	return job, nil
}

func assignToJob(job windows.Handle, pid uint32) error {
	proc, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, pid)
	if err != nil {
		return fmt.Errorf("open process %d: %w", pid, err)
	}
	defer windows.CloseHandle(proc)
	if err := windows.AssignProcessToJobObject(job, proc); err != nil {
		return fmt.Errorf("assign process %d to job object: %w", pid, err)
	}
	return nil
}

// resumeProcess resumes the threads of a process started with
// CREATE_SUSPENDED. os/exec keeps the main thread's handle to itself, so the
// thread is found through a Toolhelp snapshot.
func resumeProcess(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("snapshot threads: %w", err)
	}
	defer windows.CloseHandle(snap)
	var entry windows.ThreadEntry32
	entry.Size = uint32(unsafe.Sizeof(entry))
	resumed := 0
	for err = windows.Thread32First(snap, &entry); err == nil; err = windows.Thread32Next(snap, &entry) {
		if entry.OwnerProcessID != pid {
			continue
		}
		thread, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, entry.ThreadID)
		if err != nil {
			return fmt.Errorf("open thread %d of process %d: %w", entry.ThreadID, pid, err)
		}
		_, err = windows.ResumeThread(thread)
		windows.CloseHandle(thread)
		if err != nil {
			return fmt.Errorf("resume thread %d of process %d: %w", entry.ThreadID, pid, err)
		}
		resumed++
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return fmt.Errorf("walk thread snapshot: %w", err)
	}
	if resumed == 0 {
		return fmt.Errorf("no thread of process %d found to resume", pid)
	}
	return nil
}

// CTRL_BREAK and not CTRL_C: a process created with CREATE_NEW_PROCESS_GROUP
// ignores CTRL_C. The event only reaches processes attached to the agent's
// console; without one (a service) this fails and Stop goes to the kill.
func (s *treeSys) interrupt() error {
	return windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, s.pid)
}

func (s *treeSys) kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.job == 0 {
		return nil
	}
	return windows.TerminateJobObject(s.job, killedExitCode)
}

func (s *treeSys) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.job == 0 {
		return nil
	}
	err := windows.TerminateJobObject(s.job, killedExitCode)
	if cerr := windows.CloseHandle(s.job); cerr != nil && err == nil {
		err = cerr
	}
	s.job = 0
	return err
}
