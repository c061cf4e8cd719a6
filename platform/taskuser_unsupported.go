//go:build !linux && !darwin && !windows

package platform

// Task users on the OSes labrunner does not ship for: CheckTaskUserMode
// refuses per-task and console, so nothing below is reached by a runner
// that started.

import (
	"fmt"
	"os/exec"
	"runtime"
)

type taskUserSys struct{}

func canManageTaskUsers() error { return unsupportedHere("creating task users") }

func (u *TaskUser) create(string, TaskUserIDs) error { return canManageTaskUsers() }

func taskUserKill() TaskKill { return TaskKill{} }

func consoleUser(string) (*TaskUser, error) { return nil, canManageTaskUsers() }

func listTaskUsers(string) ([]string, error) { return nil, nil }

func existingTaskUser(string) (*TaskUser, error) { return nil, canManageTaskUsers() }

func (u *TaskUser) own(string) error { return canManageTaskUsers() }

func (u *TaskUser) runAs(*exec.Cmd) error { return canManageTaskUsers() }

func (u *TaskUser) addToGroup(string) error { return canManageTaskUsers() }

func (u *TaskUser) groupsChanged() error { return nil }

func (u *TaskUser) removeFromGroup(string) error { return canManageTaskUsers() }

func (u *TaskUser) elevate() error { return ErrNoElevation }

func (u *TaskUser) killProcesses() (int, error) { return 0, canManageTaskUsers() }

func (u *TaskUser) processes() ([]int, error) { return nil, nil }

func (u *TaskUser) remove() error { return canManageTaskUsers() }

func (u *TaskUser) release() {}

func (u *TaskUser) refuseMightyConsole() error { return nil }

// unsupportedHere is the refusal of an OS without task users.
func unsupportedHere(what string) error {
	return fmt.Errorf("%w: %s is not supported on %s", ErrTaskUserModeUnsupported, what, runtime.GOOS)
}
