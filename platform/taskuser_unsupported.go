//go:build !linux

package platform

// Task users are not implemented yet on Windows and macOS (each gets a
// taskuser_<os>.go of its own when they are): CheckTaskUserMode refuses
// per-task and console, so these are never reached by a runner that
// started.

import (
	"fmt"
	"os/exec"
	"runtime"
)

const perTaskUsersSupported = false

// taskUserSys will hold the account's OS handles (SID and profile on
// Windows, record name on macOS).
type taskUserSys struct{}

func (taskUserSys) unsupported() error {
	return fmt.Errorf("%w: task users are not supported yet on %s", ErrTaskUserModeUnsupported, runtime.GOOS)
}

func (u *TaskUser) create() error { return u.sys.unsupported() }

func (u *TaskUser) own(string) error { return u.sys.unsupported() }

func (u *TaskUser) runAs(*exec.Cmd) {}

func (u *TaskUser) killProcesses() (int, error) { return 0, u.sys.unsupported() }

func (u *TaskUser) remove() error { return u.sys.unsupported() }
