//go:build unix

package platform

import (
	"errors"
	"os/exec"
	"syscall"
)

// treeSys is the Unix side of a ProcessTree: the process group id.
type treeSys struct {
	pgid int
}

func startTree(cmd *exec.Cmd) (*treeSys, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// The command leads a new process group; every descendant that does not
	// create its own group (as generic-worker also assumes) is in it.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &treeSys{pgid: cmd.Process.Pid}, nil
}

// SIGTERM rather than SIGINT: a non-interactive shell starts its background
// jobs with SIGINT ignored, so SIGINT would leave `cmd &` running.
func (s *treeSys) interrupt() error { return s.signal(syscall.SIGTERM) }

func (s *treeSys) kill() error { return s.signal(syscall.SIGKILL) }

func (s *treeSys) close() error { return s.kill() }

func (s *treeSys) signal(sig syscall.Signal) error {
	err := syscall.Kill(-s.pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		// The group is empty: nothing left to stop.
		return nil
	}
	return err
}
