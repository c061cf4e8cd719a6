package faults

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// countingScript prints "line 1" … "line n", one every 0.5 s, after
// touching started.
func countingScript(started string, n int) string {
	return fmt.Sprintf(`touch %q; i=1; while [ $i -le %d ]; do echo "line $i"; i=$((i+1)); sleep 0.5; done`, started, n)
}

// checkLines fails unless log holds "line 1" … "line n" in order.
func checkLines(t *testing.T, log string, n int) {
	t.Helper()
	at := 0
	for i := 1; i <= n; i++ {
		j := strings.Index(log[at:], fmt.Sprintf("line %d\n", i))
		if j < 0 {
			t.Errorf("log lacks \"line %d\" (in order); log:\n%s", i, log)
			return
		}
		at += j
	}
}

// The queue is unreachable (every connection reset) for longer than the
// runner's reclaim interval but shorter than the claim: the reclaim due
// during the cut fails and is retried, the first one through after the
// cut keeps the claim, and the same run completes with its whole log. The
// task outlasts its first claim, so its run could not complete had no
// reclaim got through.
func TestFaultQueueUnreachableShorterThanClaim(t *testing.T) {
	t.Parallel()
	const claim, margin, cut, lines = 30 * time.Second, 24 * time.Second, 15 * time.Second, 60
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second, ClaimTimeout: claim}, 2)
	queueID := "faults/cut-short"
	cfg := staticRunner(q, queueID, "cut-short-1", 1)
	cfg["reclaimMargin"] = margin.String() // a reclaim every claim − margin = 6 s
	r := newRunner(t, cfg)
	started := filepath.Join(r.dir, "started")
	task := q.create(taskSpec{queueID: queueID, script: countingScript(started, lines)})
	waitFile(t, 60*time.Second, started)

	q.proxy.Cut()
	time.Sleep(cut)
	q.proxy.Restore()
	restored := time.Now()

	st := q.waitResolved(task, 120*time.Second)
	if st.State != "completed" || len(st.Runs) != 1 {
		t.Fatalf("task %s: %s with %d runs, want completed on its only run", task, st.State, len(st.Runs))
	}
	log, err := q.artifact(task, 0, "public/logs/live.log")
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, log, lines)
	figure(t, "queue cut (connections reset) for %s (reclaim every %s, claim %s): same run completed %s after the cut ended, log complete (%d lines); proxy: %s",
		cut, claim-margin, claim, time.Since(restored).Round(time.Millisecond), lines, q.proxy.Counts())
}

// The queue is unreachable for longer than a claim: the queue expires the
// run (exception/claim-expired) and retries the task; the runner, unable
// to reclaim before takenUntil, kills the run's processes and reports
// nothing; after the cut it claims the retry, which completes with its
// whole log.
func TestFaultQueueUnreachableLongerThanClaim(t *testing.T) {
	t.Parallel()
	const claim, cut, lines = 10 * time.Second, 25 * time.Second, 10
	q := startQueue(t, devqueue.Config{PollWait: 2 * time.Second, ClaimTimeout: claim}, 3)
	queueID := "faults/cut-long"
	r := newRunner(t, staticRunner(q, queueID, "cut-long-1", 1))
	started := filepath.Join(r.dir, "started")
	script := fmt.Sprintf(`if [ "$RUN_ID" = 0 ]; then touch %q; sleep 600; fi; %s`, started, countingScript(filepath.Join(r.dir, "retry"), lines))
	task := q.create(taskSpec{queueID: queueID, script: script})
	waitFile(t, 60*time.Second, started)

	q.proxy.Cut()
	cutAt := time.Now()
	var gone time.Duration
	waitFor(t, cut, "the runner to kill the run whose claim it lost", func() bool {
		return len(processesWithEnv("TASK_ID="+task, "RUN_ID=0")) == 0
	})
	gone = time.Since(cutAt)
	time.Sleep(time.Until(cutAt.Add(cut)))
	q.proxy.Restore()
	restored := time.Now()

	st := q.waitResolved(task, 120*time.Second)
	if st.State != "completed" || len(st.Runs) != 2 {
		t.Fatalf("task %s: %s with %d runs, want completed on its second run", task, st.State, len(st.Runs))
	}
	if r0 := st.Runs[0]; r0.State != "exception" || r0.ReasonResolved != "claim-expired" {
		t.Errorf("run 0: %s/%s, want exception/claim-expired", r0.State, r0.ReasonResolved)
	}
	log, err := q.artifact(task, 1, "public/logs/live.log")
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, log, lines)
	figure(t, "queue cut (connections reset) for %s (claim %s): run 0 claim-expired, its processes killed %s into the cut, artifacts of run 0: %v; retry completed %s after the cut ended with its whole log",
		cut, claim, gone.Round(time.Millisecond), q.artifactNames(task, 0), time.Since(restored).Round(time.Millisecond))
}
