package agent

// A run's task user (platform.TaskUser). In per-task mode each run's
// commands run as a fresh account that owns the task directory; in console
// mode as the console's logged-in user. The payload's osGroups are joined
// for the run and features.runAsAdministrator gives the commands the
// account's elevated token, as generic-worker does
// (workers/generic-worker/os_groups_windows.go and
// runasadministrator_windows.go at v44.23.4). After the last command
// every process of a per-task account is killed, what survives is
// reported, and the account is removed with its home.
// docs/operations.md ("Task users") describes the modes.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/labrunner/labrunner/platform"
)

// runUser is the account of one run and the groups it joined.
type runUser struct {
	*platform.TaskUser
	groups []string
}

// taskUserPayloadError is a payload the task user cannot honour
// (malformed-payload, as generic-worker).
type taskUserPayloadError struct{ err error }

func (e *taskUserPayloadError) Error() string { return e.err.Error() }
func (e *taskUserPayloadError) Unwrap() error { return e.err }

// startTaskUser makes or finds the run's account, gives it the task
// directory, joins the payload's groups and elevates when asked; nil (and
// no error) when commands run as the agent's own account. A
// *taskUserPayloadError is the payload's fault.
func (a *Agent) startTaskUser(taskDir string, spec *Payload, tl *taskLog) (*runUser, error) {
	if err := refuseConsoleElevation(a.cfg.TaskUser, spec); err != nil {
		tl.Printf("%v", err)
		return nil, err
	}
	var u *platform.TaskUser
	var err error
	switch a.cfg.TaskUser {
	case platform.TaskUserPerTask:
		u, err = platform.NewTaskUser(a.cfg.TasksDir, a.cfg.TaskUserIDs)
	case platform.TaskUserConsole:
		u, err = platform.ConsoleTaskUser(a.cfg.ConsoleUser)
	default:
		if len(spec.OSGroups) > 0 {
			// generic-worker's words when it runs tasks as its own account.
			tl.Printf("Not adding task user to group(s) %v since we are running as current user (taskUser: service).", spec.OSGroups)
		}
		return nil, nil
	}
	if err != nil {
		tl.Printf("Could not set up the task user (taskUser: %s): %v", a.cfg.TaskUser, err)
		return nil, fmt.Errorf("task user: %w", err)
	}
	ru := &runUser{TaskUser: u}
	fail := func(err error) (*runUser, error) {
		a.endTaskUser(ru, tl)
		return nil, err
	}
	if err := u.Own(taskDir); err != nil {
		tl.Printf("Could not give the task directory to task user %s: %v", u.Name, err)
		return fail(fmt.Errorf("task user: %w", err))
	}
	if len(spec.OSGroups) > 0 {
		ru.groups, err = u.AddToGroups(spec.OSGroups)
		if err != nil {
			tl.Printf("Could not add task user to os group(s) %v: %v", spec.OSGroups, err)
			return fail(&taskUserPayloadError{fmt.Errorf("payload.osGroups: could not add task user to os group(s) %v: %w; list groups that exist on the worker", spec.OSGroups, err)})
		}
		tl.Printf("Task user %s added to group(s) %s for this task", u.Name, strings.Join(ru.groups, ", "))
	}
	if spec.RunAsAdministrator {
		if err := u.RunElevated(); err != nil {
			tl.Printf("Could not obtain UAC elevated auth token: %v", err)
			if errors.Is(err, platform.ErrNoElevation) {
				err = &taskUserPayloadError{fmt.Errorf("payload.features.runAsAdministrator: %w; you probably need to add group \"Administrators\" to task.payload.osGroups, or UAC is off on this worker", err)}
			}
			return fail(err)
		}
		tl.Printf("Commands run elevated (features.runAsAdministrator)")
	}
	if u.Console {
		tl.Printf("Running as the console's user %s (home %s)", u.Name, u.Home)
	} else {
		tl.Printf("Running as task user %s (home %s)", u.Name, u.Home)
	}
	return ru, nil
}

// endTaskUser kills what the run's account left running, reports what
// survives, leaves the groups it joined and removes the account; failures
// are logged in the task log and the agent's. It reports false when the
// account is kept because its processes survive: they may still write in
// the task directory, so its caches are purged rather than kept
// (mountrun.go).
func (a *Agent) endTaskUser(u *runUser, tl *taskLog) (ended bool) {
	if u == nil {
		return true
	}
	n, err := u.KillProcesses()
	if n > 0 {
		what := "processes"
		if n == 1 {
			what = "process"
		}
		tl.Printf("Killed %d %s task user %s left running", n, what, u.Name)
	}
	if err != nil {
		tl.Printf("Could not kill every process of task user %s: %v", u.Name, err)
		a.log.Error("kill the task user's processes", "user", u.Name, "error", err)
	}
	if pids, err := a.survivors(u.TaskUser); err != nil || len(pids) > 0 {
		tl.Printf("Processes of task user %s survive the task: %v %v", u.Name, pids, err)
		a.log.Error("processes of the task user survive the task", "user", u.Name, "pids", pids, "error", err)
		// Removing an account whose processes still run would leave them
		// to a future account of the same id.
		return false
	}
	if err := u.RemoveFromGroups(u.groups); err != nil {
		tl.Printf("Could not remove task user %s from its groups: %v", u.Name, err)
		a.log.Error("remove the task user from its groups", "user", u.Name, "error", err)
	}
	if err := u.Remove(); err != nil {
		tl.Printf("Could not remove task user %s: %v", u.Name, err)
		a.log.Error("remove the task user", "user", u.Name, "error", err)
		if errors.Is(err, platform.ErrTaskProcessesLeft) {
			return false // kept, with a process that may write in its caches
		}
	}
	return true
}

// removeLeftTaskUsers removes the per-task accounts a previous agent on
// this tasks directory left (a crash or power loss mid-task).
func (a *Agent) removeLeftTaskUsers() {
	if a.cfg.TaskUser != platform.TaskUserPerTask {
		return
	}
	k := platform.TaskUserKill()
	a.log.Info("task users' processes are killed by "+k.Method, "how", k.Detail, "taskUserIds", a.cfg.TaskUserIDs.OrDefault().String())
	names, err := platform.RemoveLeftTaskUsers(a.cfg.TasksDir)
	if len(names) > 0 {
		a.log.Warn("removed task users left by an earlier run of the agent", "users", names)
	}
	if err != nil {
		a.log.Error("remove task users left by an earlier run of the agent", "error", err)
	}
}

// refuseConsoleElevation refuses features.runAsAdministrator in console
// mode: the console's account outlives the task, so an elevated task
// could change it, and through it the machine, for every later task.
func refuseConsoleElevation(mode platform.TaskUserMode, spec *Payload) error {
	if mode == platform.TaskUserConsole && spec.RunAsAdministrator {
		return &taskUserPayloadError{errors.New("payload.features.runAsAdministrator: refused on a worker whose tasks run as the console's user (taskUser: console), which outlives the task; run the task on a pool with taskUser: per-task")}
	}
	return nil
}
