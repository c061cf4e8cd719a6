package platform

// Task users: the accounts task commands run as, so that a task cannot
// read or change the runner's files nor leave software behind for the next
// task. The modes (docs/operations.md, "Task users"):
//
//	service   commands run as the runner's own account (no isolation)
//	per-task  a fresh local account per task:
//	            NewTaskUser ──▶ Own(task dir) ──▶ [AddToGroups] ──▶ RunAs(each command)
//	              ──▶ KillProcesses (everything the account still runs: its
//	                  cgroup on Linux, then by uid or token)
//	              ──▶ [RemoveFromGroups] ──▶ Remove (account, home/profile and
//	                  what it left in /tmp and kin, IPC objects)
//	            An account's uid is not given again while the range
//	            (TaskUserIDs) has others (taskuser_ids.go).
//	console   commands run as the user logged in at the console, in its
//	          graphical session: ConsoleTaskUser ──▶ Own ──▶ RunAs; the
//	          account and its desktop are left alone afterwards
//
// RemoveLeftTaskUsers, at start, removes the accounts a crashed runner
// left behind. The design follows generic-worker's multiuser engine
// (workers/generic-worker/multiuser.go, multiuser_posix.go and
// multiuser_windows.go at v44.23.4): there, as here, the password is random
// and never shown, and the account is in no administrators' group.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
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

// DefaultTaskUserMode is the mode when none is configured: tasks never
// run as the runner's account unless an operator says so.
const DefaultTaskUserMode = TaskUserPerTask

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

// CheckTaskUserMode says whether this runner can run tasks in mode m: the
// OS must have the mode, and the runner's account the right to create
// accounts (per-task) or to start processes as another user (console).
// The refusal names the setting and the fix.
func CheckTaskUserMode(m TaskUserMode) error {
	if m == TaskUserService {
		return nil
	}
	if err := canManageTaskUsers(); err != nil {
		return fmt.Errorf("%w: taskUser %s: %v; or set taskUser: service (no isolation: tasks run as the runner's account), as on a development machine", ErrTaskUserModeUnsupported, m, err)
	}
	return nil
}

// TaskUser is the account one task runs as.
type TaskUser struct {
	// Name is the account's name (per-task: task_ and 10 hex digits).
	Name string
	// Home is its home directory (its profile on Windows).
	Home string
	// Console says the account is the console's user: it is not created
	// nor removed for the task, and only the task's own processes die.
	Console bool

	// keep are the runner's directories (its tasks directory, those given
	// to Own) whose files the account's removal leaves, should they lie
	// where it removes the account's files (run-task's tasks directory is
	// in /tmp).
	keep []string

	sys taskUserSys
}

// taskUserPrefix starts the name of every per-task account.
const taskUserPrefix = "task_"

// taskUserComment is the description of the per-task accounts of the
// runner whose tasks directory is owner: RemoveLeftTaskUsers removes only
// those, never another runner's (tests run several on one machine).
func taskUserComment(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return "labrunner task user " + hex.EncodeToString(sum[:6])
}

// NewTaskUser creates a fresh account with a random password (never
// logged), its own home and no group but its own. owner is the runner's
// tasks directory, marked on the account for RemoveLeftTaskUsers; ids is
// the range its uid comes from on Linux and macOS (zero: the default),
// an id not given to an earlier account while the range has others.
func NewTaskUser(owner string, ids TaskUserIDs) (*TaskUser, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create task user: random name: %w", err)
	}
	u := &TaskUser{Name: taskUserPrefix + hex.EncodeToString(b), keep: []string{owner}}
	if err := u.create(taskUserComment(owner), ids); err != nil {
		return nil, fmt.Errorf("create task user %s: %w", u.Name, err)
	}
	return u, nil
}

// TaskKill says how this machine finds and kills the processes of
// per-task accounts (the runner's status shows it).
type TaskKill struct {
	// Method is TaskKillCgroup, TaskKillUID or TaskKillToken.
	Method string
	// Detail says where the cgroups are, or why there are none.
	Detail string
}

// The ways processes of per-task accounts are killed.
const (
	// TaskKillCgroup: each task's commands run in a cgroup of their own,
	// killed with cgroup.kill whatever uid they took (Linux).
	TaskKillCgroup = "cgroup"
	// TaskKillUID: processes are found by uid (Linux without task
	// cgroups; macOS).
	TaskKillUID = "uid"
	// TaskKillToken: processes are found by their token's user (Windows).
	TaskKillToken = "token"
)

// TaskUserKill is how this machine kills the processes of per-task
// accounts (the first call on Linux tries cgroups).
func TaskUserKill() TaskKill { return taskUserKill() }

// ConsoleTaskUser is the user logged in at the console, inside whose
// graphical session commands run; name, when set, is the account
// expected there (the autologin account), else whoever is logged in.
func ConsoleTaskUser(name string) (*TaskUser, error) {
	u, err := consoleUser(name)
	if err != nil {
		return nil, fmt.Errorf("console user: %w", err)
	}
	if err := u.refuseMightyConsole(); err != nil {
		u.release()
		return nil, fmt.Errorf("console user: %w", err)
	}
	u.Console = true
	return u, nil
}

// RemoveLeftTaskUsers kills the processes of, and removes, the per-task
// accounts of the runner whose tasks directory is owner that are still
// on the machine (a crash or power loss mid-task); it returns their names.
func RemoveLeftTaskUsers(owner string) ([]string, error) {
	names, err := listTaskUsers(taskUserComment(owner))
	if err != nil {
		return nil, fmt.Errorf("list task users left behind: %w", err)
	}
	var errs []error
	for _, name := range names {
		u, err := existingTaskUser(name)
		if err == nil {
			u.keep = []string{owner}
			_, err = u.KillProcesses()
		}
		if err == nil {
			err = u.Remove()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("task user %s left behind: %w", name, err))
		}
	}
	return names, errors.Join(errs...)
}

// Own gives dir and everything in it to the account, and lets it reach
// dir through its parents (search permission only: it can list or read
// nothing on the way).
func (u *TaskUser) Own(dir string) error {
	u.keep = append(u.keep, dir)
	if err := u.own(dir); err != nil {
		return fmt.Errorf("give %s to task user %s: %w", dir, u.Name, err)
	}
	return nil
}

// RunAs makes cmd (not yet started) run as the account; its SysProcAttr
// is extended, not replaced. cmd.Env gets the account's own variables
// (HOME, USER, LOGNAME on Unix; USERPROFILE, USERNAME, APPDATA and kin on
// Windows; the session's display on a console), which replace the
// runner's.
func (u *TaskUser) RunAs(cmd *exec.Cmd) error {
	if err := u.runAs(cmd); err != nil {
		return fmt.Errorf("run %s as %s: %w", cmd.Path, u.Name, err)
	}
	return nil
}

// AddToGroups adds the account to the local groups for this task (the
// payload's osGroups); added lists those it joined, which RemoveFromGroups
// takes back. A group that does not exist is an error naming it.
func (u *TaskUser) AddToGroups(groups []string) (added []string, err error) {
	if u.Console {
		return nil, fmt.Errorf("add %s to groups %s: the console's user is not changed for a task; use taskUser: per-task for osGroups", u.Name, strings.Join(groups, ", "))
	}
	for _, g := range groups {
		if err := u.addToGroup(g); err != nil {
			return added, fmt.Errorf("add task user %s to group %q: %w", u.Name, g, err)
		}
		added = append(added, g)
	}
	if err := u.groupsChanged(); err != nil {
		return added, fmt.Errorf("task user %s: refresh its groups: %w", u.Name, err)
	}
	return added, nil
}

// RemoveFromGroups takes the account out of groups again.
func (u *TaskUser) RemoveFromGroups(groups []string) error {
	var errs []error
	for _, g := range groups {
		if err := u.removeFromGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("remove task user %s from group %q: %w", u.Name, g, err))
		}
	}
	return errors.Join(errs...)
}

// ErrTaskProcessesLeft is wrapped by Remove when processes of the account
// kept appearing while its files were removed (another task ran a setuid
// program it left): the account is kept, as when KillProcesses fails.
var ErrTaskProcessesLeft = errors.New("processes of the account keep appearing")

// ErrNoElevation is wrapped when RunElevated cannot give commands
// administrator rights: not Windows, or UAC off.
var ErrNoElevation = errors.New("no elevated token")

// RunElevated makes later RunAs calls use the account's elevated token
// (Windows' features.runAsAdministrator; the account must be in
// Administrators through osGroups). Elsewhere, or with UAC off, it fails
// wrapping ErrNoElevation.
func (u *TaskUser) RunElevated() error {
	if err := u.elevate(); err != nil {
		return fmt.Errorf("task user %s: elevated token: %w", u.Name, err)
	}
	return nil
}

// KillProcesses kills every process of the account, not only the command
// trees the agent started (a task may start a new session), until none is
// left; it returns how many it killed. The console's user keeps its
// session: nothing is killed.
func (u *TaskUser) KillProcesses() (int, error) {
	if u.Console {
		return 0, nil
	}
	n, err := u.killProcesses()
	if err != nil {
		return n, fmt.Errorf("kill the processes of task user %s: %w", u.Name, err)
	}
	return n, nil
}

// Survivors lists the processes of the account that still run (the
// between-task check's view after KillProcesses).
func (u *TaskUser) Survivors() ([]int, error) {
	if u.Console {
		return nil, nil
	}
	pids, err := u.processes()
	if err != nil {
		return nil, fmt.Errorf("processes of task user %s: %w", u.Name, err)
	}
	return pids, nil
}

// Remove deletes the account and its home. Call KillProcesses first. The
// console's user is only released.
func (u *TaskUser) Remove() error {
	if u.Console {
		u.release()
		return nil
	}
	if err := u.remove(); err != nil {
		return fmt.Errorf("remove task user %s: %w", u.Name, err)
	}
	return nil
}
