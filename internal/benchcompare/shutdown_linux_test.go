//go:build linux

package benchcompare

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// logPeak runs one task that prints mb MB of log and samples the worker's
// process tree (the task's own processes included, the same few MB for
// both) every 100 ms until the task is resolved: the peak RSS in MB, and
// the time from createTask to resolved in s.
func logPeak(t testing.TB, s *stack, p *proc, workerType string, mb int) (peakMB, seconds float64) {
	t.Helper()
	// 100-byte lines: 99 characters and a newline.
	script := fmt.Sprintf("yes %099d | head -c %d", 0, mb*1000*1000)
	t0 := time.Now()
	id := s.createTask(t, workerType, shPayload(script))
	done := make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		for {
			select {
			case <-p.exited:
				return
			default:
			}
			peak = max(peak, treeRSSKB(p.cmd.Process.Pid))
			st, err := s.queue.Status(id)
			if err == nil && len(st.Status.Runs) > 0 {
				if r := st.Status.Runs[0].State; r != "pending" && r != "running" {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	<-done
	elapsed := time.Since(t0)
	s.waitResolved(t, id, p, time.Second)
	return float64(peak) / 1024, elapsed.Seconds()
}

// leftBehind is what a worker stopped with SIGTERM while a task ran
// leaves: whether the task's process still runs, and how many entries its
// tasksDir still holds.
type leftBehind struct {
	exitMS      float64 // SIGTERM → the worker process exited
	exited      bool    // false: it had not exited within the give-up time
	processes   int     // the task's background process still running (0 or 1)
	taskDirents int     // entries left in tasksDir
}

// sigtermWithTask starts a task whose shell runs `sleep 300` in the
// background and waits, then sends the worker SIGTERM (what systemd and
// launchd send) and times until the worker exits, giving up after giveUp;
// then it counts what is left, and kills the task's sleep if it lives on.
func sigtermWithTask(t testing.TB, s *stack, p *proc, workerType, dir, tasksDir string, giveUp time.Duration) leftBehind {
	t.Helper()
	pidFile := filepath.Join(dir, "sigterm-pid")
	s.createTask(t, workerType, shPayload(fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)))
	pid := int(readNumber(t, pidFile, p, 60*time.Second))
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to the worker: %v", err)
	}
	var out leftBehind
	select {
	case <-p.exited:
		out.exitMS, out.exited = float64(time.Since(t0).Microseconds())/1000, true
	case <-time.After(giveUp):
		out.exitMS = float64(giveUp.Milliseconds())
	}
	// Let a worker that is still stopping finish before counting.
	time.Sleep(time.Second)
	if alive(pid) {
		out.processes = 1
		_ = syscall.Kill(pid, syscall.SIGKILL) // the task's own sleep
	}
	entries, _ := os.ReadDir(tasksDir)
	out.taskDirents = len(entries)
	p.stop()
	return out
}
