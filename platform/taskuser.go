package platform

// Task users: the accounts task commands run as, so that a task cannot
// read or change the runner's files nor leave software behind for the next
// task. The modes (docs/operations.md, "Task users"):
//
//	service   commands run as the runner's own account (no isolation)
//	per-task  a fresh local account per task:
//	            NewTaskUser ──▶ Own(task dir) ──▶ RunAs(each command)
//	              ──▶ KillProcesses (everything the account still runs) ──▶ Remove (account and home)
//	console   commands run as the user logged in at the console, in its
//	          graphical session (not implemented yet)
//
// Only Linux implements per-task so far (taskuser_linux.go); elsewhere
// CheckTaskUserMode refuses every mode but service, so that a runner
// configured otherwise does not start. The design follows generic-worker's
// multiuser engine (workers/generic-worker/multiuser.go and
// multiuser_posix.go at v44.23.4).

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

// TaskUserMode says which account task commands run as.
type TaskUserMode string

// The task-user modes.
const (
	// TaskUserService runs commands as the runner's own account.
	TaskUserService TaskUserMode = "service"
	// TaskUserPerTask runs each task as a fresh account deleted after it.
	TaskUserPerTask TaskUserMode = "per-task"
	// TaskUserConsole runs commands as the console's logged-in user.
	TaskUserConsole TaskUserMode = "console"
)

// DefaultTaskUserMode is the mode when none is configured.
const DefaultTaskUserMode = TaskUserService

// ParseTaskUserMode reads a mode; "" is the default.
func ParseTaskUserMode(s string) (TaskUserMode, error) {
	switch m := TaskUserMode(s); m {
	case "":
		return DefaultTaskUserMode, nil
	case TaskUserService, TaskUserPerTask, TaskUserConsole:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a task-user mode; use per-task, console or service", s)
}

// ErrTaskUserModeUnsupported is wrapped by CheckTaskUserMode's refusals.
var ErrTaskUserModeUnsupported = errors.New("task-user mode not supported")

// CheckTaskUserMode says whether this OS can run tasks in mode m.
func CheckTaskUserMode(m TaskUserMode) error {
	if m == TaskUserService {
		return nil
	}
	if m == TaskUserPerTask && perTaskUsersSupported {
		return nil
	}
	return fmt.Errorf("%w: taskUser %s is not supported yet on %s; set taskUser: service (no isolation) until it is", ErrTaskUserModeUnsupported, m, runtime.GOOS)
}

// TaskUser is a fresh local account that one task runs as.
type TaskUser struct {
	// Name is the account's name (task_ and 10 hex digits).
	Name string
	// Home is its home directory, removed with it.
	Home string

	sys taskUserSys
}

// NewTaskUser creates a fresh account with a random password (never
// logged nor kept), its own home and no group but its own.
func NewTaskUser() (*TaskUser, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create task user: random name: %w", err)
	}
	u := &TaskUser{Name: "task_" + hex.EncodeToString(b)}
	if err := u.create(); err != nil {
		return nil, fmt.Errorf("create task user %s: %w", u.Name, err)
	}
	return u, nil
}

// Own gives dir and everything in it to the account, and lets it reach
// dir through its parents (search permission only: it can list or read
// nothing on the way).
func (u *TaskUser) Own(dir string) error {
	if err := u.own(dir); err != nil {
		return fmt.Errorf("give %s to task user %s: %w", dir, u.Name, err)
	}
	return nil
}

// RunAs makes cmd (not yet started) run as the account; its SysProcAttr
// is extended, not replaced. env is cmd's environment with the account's
// HOME, USER and LOGNAME.
func (u *TaskUser) RunAs(cmd *exec.Cmd) {
	u.runAs(cmd)
	cmd.Env = append(cmd.Env, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
}

// KillProcesses kills every process of the account, not only the command
// trees the agent started (a task may start a new session), until none is
// left; it returns how many it killed.
func (u *TaskUser) KillProcesses() (int, error) {
	n, err := u.killProcesses()
	if err != nil {
		return n, fmt.Errorf("kill the processes of task user %s: %w", u.Name, err)
	}
	return n, nil
}

// Remove deletes the account and its home. Call KillProcesses first.
func (u *TaskUser) Remove() error {
	if err := u.remove(); err != nil {
		return fmt.Errorf("remove task user %s: %w", u.Name, err)
	}
	return nil
}
