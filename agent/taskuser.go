package agent

// A run's task user (platform.TaskUser): in per-task mode each run's
// commands run as a fresh account that owns the task directory; after the
// last command every process of that account is killed and the account is
// removed with its home. docs/operations.md ("Task users") describes the
// modes.

import (
	"fmt"

	"github.com/labrunner/labrunner/platform"
)

// startTaskUser makes the run's account and gives it the task directory;
// nil (and no error) when commands run as the agent's own account.
func (a *Agent) startTaskUser(taskDir string, tl *taskLog) (*platform.TaskUser, error) {
	if a.cfg.TaskUser != platform.TaskUserPerTask {
		return nil, nil
	}
	u, err := platform.NewTaskUser()
	if err != nil {
		tl.Printf("Could not create the task user: %v", err)
		return nil, fmt.Errorf("task user: %w", err)
	}
	if err := u.Own(taskDir); err != nil {
		tl.Printf("Could not give the task directory to task user %s: %v", u.Name, err)
		a.endTaskUser(u, tl)
		return nil, fmt.Errorf("task user: %w", err)
	}
	tl.Printf("Running as task user %s (home %s)", u.Name, u.Home)
	return u, nil
}

// endTaskUser kills what the run's account left running and removes the
// account; failures are logged in the task log and the agent's.
func (a *Agent) endTaskUser(u *platform.TaskUser, tl *taskLog) {
	if u == nil {
		return
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
		// Removing an account whose processes still run would leave them
		// to a future account of the same id.
		return
	}
	if err := u.Remove(); err != nil {
		tl.Printf("Could not remove task user %s: %v", u.Name, err)
		a.log.Error("remove the task user", "user", u.Name, "error", err)
	}
}
