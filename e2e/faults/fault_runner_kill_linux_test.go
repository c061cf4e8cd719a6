package faults

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// restartBound is how soon after a restart the killed run must be
// resolved, so that the queue retries the task at once instead of when
// its claim expires (20 min on a real queue).
const restartBound = 10 * time.Second

// A runner killed with SIGKILL in the middle of a task and started again
// uploads the killed run's saved log with a closing line saying the worker
// restarted, resolves the run exception/worker-shutdown within
// restartBound, removes the log from the disk, kills the task's processes
// left behind, and runs the task's retry.
func TestFaultRunnerKilledMidTask(t *testing.T) {
	t.Parallel()
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second}, 1)
	queueID := "faults/killed"
	r := newRunner(t, staticRunner(q, queueID, "killed-1", 1))
	started := filepath.Join(r.dir, "started")
	task := q.create(taskSpec{queueID: queueID, script: fmt.Sprintf(
		`if [ "$RUN_ID" = 0 ]; then echo "run $RUN_ID before the kill"; touch %q; sleep 600; else echo "run $RUN_ID after the restart"; fi`, started)})
	waitFile(t, 60*time.Second, started)
	waitFor(t, 30*time.Second, "the task's first line in its log on disk", func() bool { return fileContaining(r.tasksDir, "run 0 before the kill") })
	if len(taskProcesses(task)) == 0 {
		t.Fatal("no process of the task runs before the kill")
	}

	r.kill()
	if n := len(taskProcesses(task)); n == 0 {
		t.Fatal("the task's processes died with the runner; the test needs them left behind")
	}
	restarted := time.Now()
	r.start()

	run0 := q.runResolved(task, 0, 60*time.Second)
	resolvedAfter := time.Since(restarted)
	if run0.State != "exception" || run0.ReasonResolved != "worker-shutdown" {
		t.Errorf("killed run resolved %s/%s, want exception/worker-shutdown", run0.State, run0.ReasonResolved)
	}
	if resolvedAfter > restartBound {
		t.Errorf("killed run resolved %s after the restart, want within %s", resolvedAfter.Round(time.Millisecond), restartBound)
	}
	log0, err := q.artifact(task, 0, "public/logs/live.log")
	if err != nil {
		t.Errorf("log of the killed run: %v", err)
	}
	for _, want := range []string{"run 0 before the kill", "Worker restarted at ", "Result: exception/worker-shutdown"} {
		if !strings.Contains(log0, want) {
			t.Errorf("log of the killed run lacks %q:\n%s", want, log0)
		}
	}
	// The files go once the run is resolved (the script's text says
	// "$RUN_ID", so only the killed run's output matches).
	waitFor(t, 30*time.Second, "the killed run's log to leave the tasks directory", func() bool {
		return !fileContaining(r.tasksDir, "run 0 before the kill")
	})
	var orphans []int
	waitFor(t, 30*time.Second, "the killed run's processes to be gone", func() bool {
		orphans = taskProcesses(task)
		return len(orphans) == 0
	})
	orphansGoneAfter := time.Since(restarted)

	st := q.waitResolved(task, 60*time.Second)
	if st.State != "completed" || len(st.Runs) != 2 {
		t.Fatalf("task %s after the restart: %s with %d runs, want completed on its second run", task, st.State, len(st.Runs))
	}
	log1, err := q.artifact(task, 1, "public/logs/live.log")
	if err != nil || !strings.Contains(log1, "run 1 after the restart") {
		t.Errorf("log of the retry: %v; %q", err, log1)
	}
	figure(t, "killed run resolved %s/%s %s after the restart (bound %s); leftover processes gone %s after it; retry completed %s after it; killed run's artifacts: %v",
		run0.State, run0.ReasonResolved, resolvedAfter.Round(time.Millisecond), restartBound, orphansGoneAfter.Round(time.Millisecond),
		time.Since(restarted).Round(time.Millisecond), q.artifactNames(task, 0))
}
