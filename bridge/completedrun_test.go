package bridge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
)

// The order TestClaimExpiredWhileBuildRuns does not cover: the build
// request is already complete when the task-pending of the run the queue
// added after claim-expired is handled. Here the request's first build
// ended RETRY and its log_uploaded never came (the finish reached the
// SchedulerDB, the message was lost), so the second build's SUCCESS could
// not be reported to run 0 and no reclaim kept run 0 alive. The new run
// must get the completed build's result, without a second build request.
func TestRequestCompleteBeforeNewRun(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{claimTimeout: 2 * time.Second, mutate: func(c *Config) {
			c.Reflector.LostEventAfter = time.Second
		}})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		row := e.waitRow(taskID)
		brid := *row.BuildRequestID
		a := e.agent(rb, "agent-1")
		first := a.claim()
		e.waitRun(taskID, 0, "running", "")
		ctx := context.Background()
		// The first build ends RETRY in the SchedulerDB; its log_uploaded is lost.
		if done, err := e.sdb.Complete(ctx, schedulerdb.Master{Name: a.id, Incarnation: first.Incarnation}, []int64{brid}, schedulerdb.Retry); err != nil || len(done) != 1 {
			t.Fatalf("complete first build RETRY: %v %v", done, err)
		}
		second := a.claim()
		if second.BuildRequestID != brid || second.BuildID == first.BuildID {
			t.Fatalf("second claim got build %d of request %d, want a new build of request %d", second.BuildID, second.BuildRequestID, brid)
		}
		a.finish(client.Success, map[string]any{"got_revision": "abc"}, "https://logs.example.com/2.log.gz")
		br, err := e.sdb.BuildRequest(ctx, brid)
		if err != nil || !br.Complete {
			t.Fatalf("request %d not complete after the second build: %+v %v", brid, br, err)
		}
		// The claim lapses (no reflector pass ran) and the queue adds run 1,
		// whose task-pending comes after the request completed.
		e.waitRun(taskID, 0, "exception", "claim-expired")
		waitFor(t, "run 1 of "+taskID+" completed", func() bool {
			if _, err := rb.b.ReflectOnce(ctx); err != nil {
				t.Logf("reflector pass: %v", err)
			}
			st := e.status(taskID)
			return len(st.Runs) == 2 && st.Runs[1].State == "completed"
		})
		var res resultInfo
		if err := json.Unmarshal(e.artifact(taskID, 1, "public/buildbot-result.json"), &res); err != nil || res.Code != int(schedulerdb.Success) {
			t.Errorf("run 1 buildbot-result.json = %+v (%v), want SUCCESS", res, err)
		}
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests for the task, want 1", n)
		}
		if st := e.status(taskID); len(st.Runs) != 2 {
			t.Errorf("task has %d runs, want 2: %+v", len(st.Runs), st.Runs)
		}
	})
}
