package runner

// The task users check: in per-task mode the agent removes each task's
// account after the task, and keeps it (with a line in the task log) when
// some of its processes survive the kill. Between tasks, with nothing
// running and nothing being claimed, the runner looks for this runner's
// accounts still on the machine, kills what they run and removes them; an
// account it cannot remove (processes that will not die, an account
// database that refuses) fails the check, so that the machine stops taking
// work once the check trips instead of handing the next task a machine with
// a previous task's processes on it.

import (
	"fmt"

	"github.com/labrunner/labrunner/platform"
)

// leftTaskUsers removes the runner's task users left behind; ok is false
// when the mode has no per-task users (no sample then).
func (r *Runner) leftTaskUsers() (sample, bool) {
	ac := r.agentCfg.Load()
	if platform.TaskUserMode(ac.TaskUser) != platform.TaskUserPerTask {
		return sample{}, false
	}
	names, err := platform.RemoveLeftTaskUsers(ac.TasksDir)
	s := sample{name: "task users", ok: err == nil, threshold: "none left after their task"}
	switch {
	case err != nil:
		s.value = fmt.Sprintf("%d left behind", len(names))
		s.message = err.Error()
		r.log.Error("task users left behind could not all be removed", "users", names, "error", err)
	case len(names) > 0:
		s.value = fmt.Sprintf("%d left behind, removed", len(names))
		r.log.Warn("removed task users left behind by earlier tasks", "users", names)
	default:
		s.value = "none left"
	}
	return s, true
}

// taskUserKill is how the processes of mode's accounts are killed: the
// platform's way in per-task mode, nothing otherwise.
func taskUserKill(mode string) string {
	if platform.TaskUserMode(mode) != platform.TaskUserPerTask {
		return ""
	}
	return platform.TaskUserKill().Method
}
