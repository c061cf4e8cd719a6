// Package platform holds everything that differs per operating system,
// behind portable functions and types.
package platform

// A ProcessTree is the life of one started command together with everything
// it spawns:
//
//	StartProcessTree ──▶ running ──main process exits──▶ exited ──Close──▶ released
//	                        │  Interrupt: polite signal to every process
//	                        │  Kill: every process dies now
//	                        └─ Stop(grace): Interrupt, wait ≤ grace, Kill
//
// The main process being gone does not mean the tree is: a task's background
// children live on until Kill or Close, which is why callers should Close
// every tree when its task ends.

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"
)

// ProcessTree is a started command and every process it starts.
type ProcessTree struct {
	cmd  *exec.Cmd
	sys  *treeSys
	done chan struct{}

	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// StartProcessTree starts cmd so that it and all its descendants can be
// interrupted and killed as one unit. cmd must not have been started; its
// SysProcAttr is extended, not replaced. If cmd writes to a non-*os.File
// writer, set cmd.WaitDelay so that a background child holding the output
// pipe cannot keep Wait blocked after the main process exits.
func StartProcessTree(cmd *exec.Cmd) (*ProcessTree, error) {
	if cmd.Process != nil {
		return nil, errors.New("start process tree: command already started")
	}
	sys, err := startTree(cmd)
	if err != nil {
		return nil, fmt.Errorf("start process tree for %q: %w", cmd.Path, err)
	}
	t := &ProcessTree{cmd: cmd, sys: sys, done: make(chan struct{})}
	go func() {
		t.waitErr = cmd.Wait()
		close(t.done)
	}()
	return t, nil
}

// Pid is the process id of the main process.
func (t *ProcessTree) Pid() int { return t.cmd.Process.Pid }

// Done is closed once the main process has exited and its output is copied.
func (t *ProcessTree) Done() <-chan struct{} { return t.done }

// Interrupt asks every process of the tree to stop (SIGTERM to the process
// group on Unix, CTRL_BREAK to the console process group on Windows).
func (t *ProcessTree) Interrupt() error {
	if err := t.sys.interrupt(); err != nil {
		return fmt.Errorf("interrupt process tree %d: %w", t.Pid(), err)
	}
	return nil
}

// Kill kills every process of the tree at once. It may be called after the
// main process has exited, to remove its leftover descendants.
func (t *ProcessTree) Kill() error {
	if err := t.sys.kill(); err != nil {
		return fmt.Errorf("kill process tree %d: %w", t.Pid(), err)
	}
	return nil
}

// Stop interrupts the tree, waits up to grace for the main process to exit,
// then kills whatever is left of the tree. It returns the first error met.
func (t *ProcessTree) Stop(grace time.Duration) error {
	var first error
	// An interrupt that cannot be delivered (no shared console on Windows)
	// makes waiting pointless: go straight to the kill.
	if err := t.Interrupt(); err != nil {
		first = err
	} else {
		timer := time.NewTimer(grace)
		select {
		case <-t.done:
		case <-timer.C:
		}
		timer.Stop()
	}
	if err := t.Kill(); err != nil && first == nil {
		first = err
	}
	return first
}

// Wait waits for the main process to exit and returns its exit code. A
// non-zero exit is not an error; err is set only when there is no exit code,
// e.g. the process was ended by a signal (exitCode is then -1).
func (t *ProcessTree) Wait() (exitCode int, err error) {
	<-t.done
	if t.waitErr == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(t.waitErr, &exitErr) {
		code := exitErr.ExitCode()
		if code == -1 {
			return -1, fmt.Errorf("process %d ended without an exit code: %w", t.Pid(), t.waitErr)
		}
		return code, nil
	}
	return -1, fmt.Errorf("wait for process %d: %w", t.Pid(), t.waitErr)
}

// Close kills whatever remains of the tree and releases its OS resources.
// Call it once the tree's task is over; later calls return the first result.
func (t *ProcessTree) Close() error {
	t.closeOnce.Do(func() {
		if err := t.sys.close(); err != nil {
			t.closeErr = fmt.Errorf("close process tree %d: %w", t.Pid(), err)
		}
	})
	return t.closeErr
}
