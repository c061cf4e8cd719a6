package runner

// Processes left behind by earlier tasks: a task's process tree is killed
// when it ends, but a daemon that re-parented itself into a new session
// (or a job the OS let escape) lives on, holding files and CPU. Such a
// process still carries the TASK_WORKDIR the agent gave it, under our tasks
// directory, and a TASK_ID that is no longer running: that is how it is
// recognised, and nothing else is touched.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shirou/gopsutil/v4/process"
)

// killLeftovers kills the processes of tasks no longer running.
func killLeftovers(tasksDir string, running map[string]bool) (killed, failed int, err error) {
	root, err := filepath.Abs(tasksDir)
	if err != nil {
		return 0, 0, fmt.Errorf("leftover processes: tasks directory %s: %w", tasksDir, err)
	}
	procs, err := process.Processes()
	if err != nil {
		return 0, 0, fmt.Errorf("leftover processes: list processes: %w", err)
	}
	self := int32(os.Getpid())
	var errs []error
	for _, p := range procs {
		if p.Pid == self {
			continue
		}
		env, err := p.Environ()
		if err != nil {
			// Gone already, or not ours to read.
			continue
		}
		var workdir, taskID string
		for _, kv := range env {
			switch {
			case strings.HasPrefix(kv, "TASK_WORKDIR="):
				workdir = strings.TrimPrefix(kv, "TASK_WORKDIR=")
			case strings.HasPrefix(kv, "TASK_ID="):
				taskID = strings.TrimPrefix(kv, "TASK_ID=")
			}
		}
		if workdir == "" || running[taskID] {
			continue
		}
		if rel, err := filepath.Rel(root, workdir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		if err := p.Kill(); err != nil {
			if running, _ := p.IsRunning(); !running {
				continue
			}
			failed++
			errs = append(errs, fmt.Errorf("kill process %d of task %s: %w", p.Pid, taskID, err))
			continue
		}
		killed++
	}
	return killed, failed, errors.Join(errs...)
}
