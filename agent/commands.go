package agent

// Commands are built per the OS's payload style (platform.TaskCommandStyle):
// argv lists run directly; cmd.exe lines go through generic-worker's batch
// wrappers (platform.BatchCommand), so that `set` and `cd` carry from one
// command to the next as on generic-worker.

import (
	"fmt"
	"os/exec"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// commandAt is the i-th command: an argv list, or a one-element list
// holding a cmd.exe line.
func commandAt(p *Payload, i int) []string {
	if p.Style == platform.CmdLineCommands {
		return []string{p.Lines[i]}
	}
	return p.Argv[i]
}

// buildCommand makes command i (last says whether it is the final one) of
// a task, run in dir with env.
func buildCommand(taskID string, i int, last bool, command []string, dir string, env []string) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	switch platform.TaskCommandStyle() {
	case platform.CmdLineCommands:
		c, err := platform.BatchCommand(dir, i, last, taskID, command[0])
		if err != nil {
			return nil, fmt.Errorf("prepare command %d: %w", i, err)
		}
		cmd = c
	default:
		cmd = exec.Command(command[0], command[1:]...)
	}
	cmd.Dir = dir
	cmd.Env = env
	// Output goes through a pipe to the log: a background child holding it
	// must not keep Wait blocked once the command itself is gone.
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}
