package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/faultproxy"
)

// 300 tasks on a runner of capacity 2 whose every queue call (claims,
// reclaims, artifacts and their uploads, reports, status polls) fails 20 %
// of the time (503, or a reset before or after the queue acted) and is
// slowed 10 % of the time: every task is resolved once, completed, and
// runs exactly once.
func TestFaultFlakyQueue(t *testing.T) {
	t.Parallel()
	const tasks, capacity = 300, 2
	// A claimWork whose answer is lost leaves its tasks claimed by nobody
	// until the claim expires; a short claim keeps the test short.
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second, ClaimTimeout: 20 * time.Second}, 300)
	queueID := "faults/flaky"
	cfg := staticRunner(q, queueID, "flaky-1", capacity)
	cfg["errorPollWait"] = "500ms"
	// Failures of the queue are not the machine's: they must not
	// quarantine it in the middle of the test.
	cfg["runner"] = map[string]any{"quarantine": map[string]any{"afterInfraFailures": 0}}
	r := newRunner(t, cfg)
	executions := filepath.Join(r.dir, "executions")
	q.proxy.SetFaults(faultproxy.Faults{
		FailRate: 0.2, Modes: []faultproxy.FailMode{faultproxy.FailStatus, faultproxy.FailResetBefore, faultproxy.FailResetAfter},
		SlowRate: 0.1, SlowMin: 200 * time.Millisecond, SlowMax: time.Second,
	})
	start := time.Now()
	ids := make([]string, tasks)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < tasks; i += 4 {
				ids[i] = q.create(taskSpec{queueID: queueID, script: fmt.Sprintf(`echo "$TASK_ID $RUN_ID" >> %q; echo "task %d ran"`, executions, i)})
			}
		}()
	}
	wg.Wait()

	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	waitFor(t, 10*time.Minute, "every task to be resolved", func() bool {
		for id := range pending {
			st := q.status(id)
			if st.State == "completed" || st.State == "failed" || st.State == "exception" {
				delete(pending, id)
			}
		}
		return len(pending) == 0
	})
	took := time.Since(start)
	counts := q.proxy.Counts()
	q.proxy.SetFaults(faultproxy.Faults{})

	runs, expired, notCompleted := 0, 0, 0
	for _, id := range ids {
		st := q.status(id)
		runs += len(st.Runs)
		completed := 0
		for _, run := range st.Runs {
			switch {
			case run.State == "completed":
				completed++
			case run.State == "exception" && run.ReasonResolved == "claim-expired":
				expired++
			default:
				t.Errorf("task %s run %d: %s/%s, want completed or (a lost claim) exception/claim-expired", id, run.RunID, run.State, run.ReasonResolved)
			}
		}
		if st.State != "completed" || completed != 1 {
			notCompleted++
			t.Errorf("task %s: %s with %d completed runs, want completed once", id, st.State, completed)
		}
	}
	raw, err := os.ReadFile(executions)
	if err != nil {
		t.Fatal(err)
	}
	executed := map[string]int{}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, line := range lines {
		executed[strings.Fields(line)[0]]++
	}
	duplicates := len(lines) - len(executed)
	for _, id := range ids {
		if executed[id] != 1 {
			t.Errorf("task %s executed %d times, want once", id, executed[id])
		}
	}
	figure(t, "%d tasks at capacity %d, 20%% of queue calls failed and 10%% slowed: %d completed once, %d not; %d executions, %d duplicates; %d runs (%d lost claims expired and retried) in %s (%.1f tasks/s); proxy: %s",
		tasks, capacity, tasks-notCompleted, notCompleted, len(lines), duplicates, runs, expired, took.Round(time.Second), float64(tasks)/took.Seconds(), counts)
}
