package bridge

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
)

// Three seed scenarios (a successful build, a RETRY then success, a deadline
// passed before the build started), end to end: Taskcluster task -> bridge
// -> SchedulerDB -> agent through the master API -> Buildbot events ->
// bridge -> Taskcluster resolution.

func TestSeedSuccessfulBuild(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		row := e.waitRow(taskID)

		a := e.agent(rb, "agent-1")
		b := a.claim()
		if b.BuildRequestID != *row.BuildRequestID || b.TaskID != taskID || b.BuilderName != goodBuilder {
			t.Fatalf("claimed %+v, want request %d of task %s", b, *row.BuildRequestID, taskID)
		}
		want := []string{"make", "foo", "--task=" + taskID}
		if len(b.Steps) != 1 || !slices.Equal(b.Steps[0].Command, want) || b.Env["PRODUCT"] != "foo" || b.Env["BRANCH"] != "none" || b.MaxRunTime != 600 {
			t.Errorf("build steps/env = %+v %v, want %v interpolated", b.Steps, b.Env, want)
		}
		// started -> claimTask: the run is running under the bridge's worker id.
		run := e.waitRun(taskID, 0, "running", "")
		if run.WorkerGroup != "buildbot-bridge" || run.WorkerID != "buildbot-bridge" {
			t.Errorf("run claimed by %s/%s, want buildbot-bridge/buildbot-bridge", run.WorkerGroup, run.WorkerID)
		}
		waitFor(t, "takenUntil stored", func() bool {
			r, err := e.st.GetTask(context.Background(), taskID)
			return err == nil && r.TakenUntil != nil && *r.TakenUntil == time.Time(run.TakenUntil).Unix()
		})
		if hb := a.heartbeat(); hb.Cancelled {
			t.Errorf("heartbeat of a running build says cancelled: %+v", hb)
		}

		a.finish(client.Success, map[string]any{"got_revision": "abc"}, "https://logs.example.com/1.log.gz")
		e.waitRun(taskID, 0, "completed", "completed")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })

		names := e.artifactNames(taskID, 0)
		for _, n := range []string{"public/properties.json", "public/buildbot-result.json", "public/logs/live_backing.log.gz"} {
			if !slices.Contains(names, n) {
				t.Errorf("artifacts %v lack %s", names, n)
			}
		}
		var props map[string][2]json.RawMessage
		if err := json.Unmarshal(e.artifact(taskID, 0, "public/properties.json"), &props); err != nil {
			t.Fatal(err)
		}
		if string(props["product"][0]) != `"foo"` || string(props["product"][1]) != `"bbb"` || string(props["got_revision"][0]) != `"abc"` ||
			string(props["request_ids"][1]) != `"postrun.py"` {
			t.Errorf("properties.json = %v", props)
		}
		var res resultInfo
		if err := json.Unmarshal(e.artifact(taskID, 0, "public/buildbot-result.json"), &res); err != nil {
			t.Fatal(err)
		}
		if res != (resultInfo{Result: "SUCCESS", Code: 0, TreeherderColour: "green"}) {
			t.Errorf("buildbot-result.json = %+v", res)
		}
		br, err := e.sdb.BuildRequest(context.Background(), b.BuildRequestID)
		if err != nil || !br.Complete || br.Results == nil || *br.Results != schedulerdb.Success {
			t.Errorf("build request after finish = %+v, %v; want complete SUCCESS", br, err)
		}
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests for the task, want 1", n)
		}
	})
}

func TestSeedRetryThenSuccess(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), nil)
		row := e.waitRow(taskID)
		brid := *row.BuildRequestID

		a := e.agent(rb, "agent-1")
		first := a.claim()
		e.waitRun(taskID, 0, "running", "")
		a.finish(client.Retry, nil, "")

		// Run 0 resolved exception/malformed-payload, run 1 created by rerunTask.
		e.waitRun(taskID, 0, "exception", "malformed-payload")
		e.waitRun(taskID, 1, "pending", "")
		waitFor(t, "row moved to run 1", func() bool {
			r, err := e.st.GetTask(context.Background(), taskID)
			return err == nil && r.RunID == 1 && r.BuildRequestID != nil && *r.BuildRequestID == brid
		})

		// Buildbot runs the same request again.
		second := a.claim()
		if second.BuildRequestID != brid || second.BuildNumber == first.BuildNumber {
			t.Fatalf("second build %+v: want request %d again with a new build number", second, brid)
		}
		e.waitRun(taskID, 1, "running", "")
		a.finish(client.Success, nil, "")
		e.waitRun(taskID, 1, "completed", "completed")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests for the task, want 1 (RETRY re-uses the request)", n)
		}
		if st := e.status(taskID); len(st.Runs) != 2 {
			t.Errorf("task has %d runs, want 2", len(st.Runs))
		}
	})
}

func TestSeedDeadlineBeforeStart(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		taskID := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) {
			d.Deadline = tcclient.Time(time.Now().Add(3 * time.Second))
		})
		brid := *e.waitRow(taskID).BuildRequestID
		e.waitRun(taskID, 0, "exception", "deadline-exceeded")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		br, err := e.sdb.BuildRequest(context.Background(), brid)
		if err != nil {
			t.Fatal(err)
		}
		// Self-serve's cancel_request effect: complete with FAILURE, never claimed.
		if !br.Complete || br.Results == nil || *br.Results != schedulerdb.Failure || br.ClaimedAt != 0 {
			t.Errorf("build request = %+v, want cancelled (complete, FAILURE, unclaimed)", br)
		}
		pending, err := e.sdb.PendingByBuilder(context.Background())
		if err != nil || pending[goodBuilder] != 0 {
			t.Errorf("pending = %v, %v; want nothing left for %s", pending, err, goodBuilder)
		}
	})
}
