package bridge

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
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

// A late copy of an old request's build event, handled while the row of a
// newer run (a rerun after the task completed) is still being injected,
// must not bind that row to the old, complete request: the new run would
// get the old result and its own request would be left to nobody.
func TestLateEventDoesNotBindNewerRun(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		brid := *e.waitRow(taskID).BuildRequestID
		a := e.agent(rb, "agent-1")
		build := a.claim()
		a.finish(client.Success, nil, "")
		e.waitRun(taskID, 0, "completed", "completed")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		rb.stop() // nothing else handles messages from here on
		b := e.newBridge()
		t.Cleanup(func() { _ = b.Close() })
		st := b.Store()

		ctx := context.Background()
		// Injection keys a request by the run's scheduled second: the rerun
		// comes in a later second, as any rerun by a person does.
		time.Sleep(time.Until(time.Time(e.status(taskID).Runs[0].Scheduled).Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
		if _, err := e.q.RerunTask(taskID); err != nil {
			t.Fatalf("rerunTask: %v", err)
		}
		// The TC listener has inserted run 1's row and not yet bound it.
		if _, created, err := st.Create(ctx, store.NewTask{TaskID: taskID, RunID: 1, Created: time.Now()}); err != nil || !created {
			t.Fatalf("create run 1's row: %v %v", created, err)
		}
		p := BuildPayload{Build: BuildStatus{BuilderName: goodBuilder, Number: build.BuildNumber,
			Properties: [][]json.RawMessage{PropertyTriple("taskId", taskID, "bbb")}}, RequestIDs: []int64{brid}}
		key := "build." + BuilderRoutingWord(goodBuilder) + "." + strconv.Itoa(build.BuildNumber) + ".started"
		body, err := NewBuildMessage(e.cfg.BBListener.Exchange, key, "agent-1", build.Incarnation, p, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		d := pulse.NewDelivery(e.cfg.BBListener.Exchange, key, body, true, nil, func() error { return nil }, func(bool) error { return nil })
		if err := b.handleStarted(ctx, d); err != nil {
			t.Fatalf("late started: %v", err)
		}
		row, err := st.GetTask(ctx, taskID)
		if err != nil {
			t.Fatal(err)
		}
		if row.RunID != 1 || row.BuildRequestID != nil {
			bound := int64(-1)
			if row.BuildRequestID != nil {
				bound = *row.BuildRequestID
			}
			t.Errorf("run 1's row = run %d brid %d, want run 1 still without a build request (not the old request %d)", row.RunID, bound, brid)
		}
		if runs := e.status(taskID).Runs; runs[1].State != "pending" {
			t.Errorf("run 1 is %s, want pending (no build of it has started)", runs[1].State)
		}
	})
}
