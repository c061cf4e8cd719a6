package faults

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// processesWithEnv lists the processes whose environment has every one of
// the given NAME=value entries.
func processesWithEnv(entries ...string) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := bytes.Split(env, []byte{0})
		all := true
		for _, e := range entries {
			found := false
			for _, v := range vars {
				if string(v) == e {
					found = true
					break
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			out = append(out, pid)
		}
	}
	return out
}

// taskProcesses lists the processes of one task (every run).
func taskProcesses(taskID string) []int { return processesWithEnv("TASK_ID=" + taskID) }

// killTaskProcesses kills every process whose TASK_WORKDIR lies under
// tasksDir, so that a failed test leaves nothing running.
func killTaskProcesses(tasksDir string) {
	dirs, _ := os.ReadDir("/proc")
	prefix := []byte("TASK_WORKDIR=" + tasksDir + string(filepath.Separator))
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(v, prefix) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}
