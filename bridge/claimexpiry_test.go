package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge/client"
)

// The bridge cannot reclaim for longer than the claim lasts (every instance
// down, or overloaded): the queue resolves the run claim-expired and adds a
// run. The new run's task-pending only moves the row, the build keeps
// running, and its result resolves the new run; still one request.
func TestClaimExpiredWhileBuildRuns(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{claimTimeout: 2 * time.Second})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		e.waitRow(taskID)
		a := e.agent(rb, "agent-1")
		a.claim()
		e.waitRun(taskID, 0, "running", "")
		// No reflector pass runs (its interval is an hour): the claim lapses.
		e.waitRun(taskID, 0, "exception", "claim-expired")
		waitFor(t, "the row to follow run 1", func() bool {
			r, err := e.st.GetTask(context.Background(), taskID)
			return err == nil && r.RunID == 1
		})
		a.finish(client.Success, map[string]any{"got_revision": "abc"}, "https://logs.example.com/1.log.gz")
		e.waitRun(taskID, 1, "completed", "completed")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests for the task, want 1", n)
		}
	})
}
