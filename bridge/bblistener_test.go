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

func props(triples ...[]json.RawMessage) [][]json.RawMessage { return triples }

// started claims the task of every request it names that has a row and
// stores takenUntil; a build without a taskId property is not a bridged one.
func TestStarted(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		ctx := context.Background()

		// One known request and one unknown; the taskId property differs
		// from the row's, which only matters to the logs.
		t1 := e.createTask(payload(goodBuilder), nil)
		b1 := *e.waitRow(t1).BuildRequestID
		e.publishBuild("started", goodBuilder, 0, BuildPayload{RequestIDs: []int64{b1, 999999},
			Build: BuildStatus{BuilderName: goodBuilder, Number: 0, Properties: props(PropertyTriple("taskId", "abc123", "bbb"))}})
		run := e.waitRun(t1, 0, "running", "")
		waitFor(t, "takenUntil stored", func() bool {
			r, err := e.st.GetTask(ctx, t1)
			return err == nil && r.TakenUntil != nil && *r.TakenUntil == time.Time(run.TakenUntil).Unix()
		})

		// A build satisfying two requests claims both tasks.
		t2, t3 := e.createTask(payload(goodBuilder), nil), e.createTask(payload(goodBuilder), nil)
		b2, b3 := *e.waitRow(t2).BuildRequestID, *e.waitRow(t3).BuildRequestID
		e.publishBuild("started", goodBuilder, 1, BuildPayload{RequestIDs: []int64{b2, b3},
			Build: BuildStatus{BuilderName: goodBuilder, Number: 1, Properties: props(PropertyTriple("taskId", t2, "bbb"))}})
		e.waitRun(t2, 0, "running", "")
		e.waitRun(t3, 0, "running", "")

		// No properties, or no taskId property: not a bridged build.
		t4 := e.createTask(payload(goodBuilder), nil)
		b4 := *e.waitRow(t4).BuildRequestID
		before := e.handled("started")
		e.publishBuild("started", goodBuilder, 2, BuildPayload{RequestIDs: []int64{b4}, Build: BuildStatus{BuilderName: goodBuilder, Number: 2}})
		e.publishBuild("started", goodBuilder, 3, BuildPayload{RequestIDs: []int64{b4},
			Build: BuildStatus{BuilderName: goodBuilder, Number: 3, Properties: props(PropertyTriple("product", "foo", "bbb"))}})
		e.waitHandled("started", before+2)
		if st := e.status(t4); st.Runs[0].State != "pending" {
			t.Errorf("task of a non-bridged started event is %s, want pending", st.Runs[0].State)
		}
	})
}

// log_uploaded attaches the artifacts and resolves the run by the result
// mapping (docs/bridge.md, "BB listener and the result mapping"), for every
// result code.
func TestLogUploadedResultMapping(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		for _, c := range []struct {
			name           string
			result         int
			state, reason  string
			keepRow        bool
			colour         string
			cancelFirst    bool // the task is cancelled in TC before the build ends
			cancelsCounted float64
		}{
			{"SUCCESS", client.Success, "completed", "completed", false, "green", false, 0},
			{"WARNINGS", client.Warnings, "failed", "failed", false, "orange", false, 0},
			{"FAILURE", client.Failure, "failed", "failed", false, "red", false, 0},
			{"EXCEPTION", client.Exception, "exception", "malformed-payload", false, "purple", false, 0},
			{"RETRY", client.Retry, "exception", "malformed-payload", true, "blue", false, 0},
			{"CANCELLED while running", client.Cancelled, "exception", "canceled", false, "pink", false, 1},
			{"CANCELLED already resolved", client.Cancelled, "exception", "canceled", false, "pink", true, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				taskID := e.createTask(payload(goodBuilder), nil)
				e.waitRow(taskID)
				a := e.agent(rb, "w")
				a.claim()
				e.waitRun(taskID, 0, "running", "")
				if c.cancelFirst {
					if _, err := e.q.CancelTask(taskID); err != nil {
						t.Fatal(err)
					}
				}
				cancels := counterValue(rb.b.metrics.tcCalls.WithLabelValues("cancel"))
				a.finish(c.result, nil, "https://logs.example.com/x.log.gz")
				e.waitRun(taskID, 0, c.state, c.reason)
				if c.keepRow {
					e.waitRun(taskID, 1, "pending", "")
					if e.noRow(taskID) {
						t.Error("row deleted, want it kept")
					}
				} else {
					waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
				}
				if got := counterValue(rb.b.metrics.tcCalls.WithLabelValues("cancel")) - cancels; got != c.cancelsCounted {
					t.Errorf("cancelTask called %v times, want %v", got, c.cancelsCounted)
				}
				// On a run resolved first the queue may refuse artifacts,
				// which the bridge logs and goes on.
				if !c.cancelFirst {
					names := e.artifactNames(taskID, 0)
					slices.Sort(names)
					want := []string{"public/buildbot-result.json", "public/logs/live_backing.log.gz", "public/properties.json"}
					if !slices.Equal(names, want) {
						t.Errorf("artifacts %v, want %v", names, want)
					}
					var res resultInfo
					_ = json.Unmarshal(e.artifact(taskID, 0, "public/buildbot-result.json"), &res)
					if res.Code != c.result || res.TreeherderColour != c.colour {
						t.Errorf("buildbot-result.json = %+v", res)
					}
				}
				if c.keepRow {
					// Finish the rerun so the next case starts with an empty queue.
					a.claim()
					e.waitRun(taskID, 1, "running", "")
					a.finish(client.Success, nil, "")
					e.waitRun(taskID, 1, "completed", "")
				}
			})
		}
	})
}

// CANCELLED for a run Taskcluster already resolved deadline-exceeded calls no
// cancelTask.
func TestLogUploadedCancelledAfterDeadline(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		taskID := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) {
			d.Deadline = tcclient.Time(time.Now().Add(3 * time.Second))
		})
		e.waitRow(taskID)
		a := e.agent(rb, "w")
		a.claim()
		e.waitRun(taskID, 0, "running", "")
		e.waitRun(taskID, 0, "exception", "deadline-exceeded")
		waitFor(t, "heartbeat reports the cancel", func() bool { return a.heartbeat().Cancelled })
		a.finish(client.Cancelled, nil, "")
		waitFor(t, "row deleted", func() bool { return e.noRow(taskID) })
		if n := counterValue(rb.b.metrics.tcCalls.WithLabelValues("cancel")); n != 0 {
			t.Errorf("cancelTask called %v times, want 0", n)
		}
	})
}

// log_uploaded for requests the bridge does not track, or without request_ids
// set by postrun.py, or without results, does nothing.
func TestLogUploadedIgnored(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		e.start()
		ctx := context.Background()
		taskID := e.createTask(payload(goodBuilder), nil)
		brid := *e.waitRow(taskID).BuildRequestID
		ok := 0
		res := &ok
		before := e.handled("log_uploaded")
		// Untracked request: the row is gone.
		if _, err := e.st.DeleteByTask(ctx, taskID); err != nil {
			t.Fatal(err)
		}
		e.publishBuild("log_uploaded", goodBuilder, 0, BuildPayload{Build: BuildStatus{BuilderName: goodBuilder, Results: res,
			Properties: props(PropertyTriple("request_ids", []int64{brid}, "postrun.py"))}})
		e.waitHandled("log_uploaded", before+1)
		// Tracked again, but request_ids not from postrun.py, or no results.
		if _, _, err := e.st.Create(ctx, storeNewTask(taskID)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.SetBuildRequestID(ctx, taskID, 0, brid); err != nil {
			t.Fatal(err)
		}
		e.publishBuild("log_uploaded", goodBuilder, 0, BuildPayload{Build: BuildStatus{BuilderName: goodBuilder, Results: res,
			Properties: props(PropertyTriple("request_ids", []int64{brid}, "somebody"))}})
		e.publishBuild("log_uploaded", goodBuilder, 0, BuildPayload{Build: BuildStatus{BuilderName: goodBuilder,
			Properties: props(PropertyTriple("request_ids", []int64{brid}, "postrun.py"))}})
		e.publishBuild("log_uploaded", goodBuilder, 0, BuildPayload{Build: BuildStatus{BuilderName: goodBuilder, Results: res}})
		e.waitHandled("log_uploaded", before+4)
		if st := e.status(taskID); st.Runs[0].State != "pending" || len(e.artifactNames(taskID, 0)) != 0 {
			t.Errorf("task touched by ignored log_uploaded: %+v", st.Runs[0])
		}
		if e.noRow(taskID) {
			t.Error("row deleted by an ignored log_uploaded")
		}
	})
}

// Buildbot's started event may come after the build's log_uploaded, or never:
// log_uploaded still claims and resolves the run. A late copy of an old
// RETRY does not touch the new run.
func TestLogUploadedOutOfOrderAndLateCopies(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		ctx := context.Background()
		taskID := e.createTask(payload(goodBuilder), nil)
		brid := *e.waitRow(taskID).BuildRequestID
		// A master claims and finishes without the started event reaching us.
		m := schedulerdb.Master{Name: "bm1", Incarnation: "i1"}
		c, err := e.sdb.Claim(ctx, m, []string{goodBuilder})
		if err != nil || c == nil || c.Request.ID != brid {
			t.Fatalf("claim = %+v, %v", c, err)
		}
		if _, err := e.sdb.Complete(ctx, m, []int64{brid}, schedulerdb.Retry); err != nil {
			t.Fatal(err)
		}
		retry := int(schedulerdb.Retry)
		retryMsg := BuildPayload{Build: BuildStatus{BuilderName: goodBuilder, Number: c.Build.Number, Results: &retry,
			Properties: props(PropertyTriple("request_ids", []int64{brid}, "postrun.py"), PropertyTriple("taskId", taskID, "bbb"))}}
		e.publishBuild("log_uploaded", goodBuilder, c.Build.Number, retryMsg)
		e.waitRun(taskID, 0, "exception", "malformed-payload")
		e.waitRun(taskID, 1, "pending", "")

		// The next build of the same request runs for run 1 ...
		a := e.agent(rb, "w")
		a.claim()
		e.waitRun(taskID, 1, "running", "")
		// ... and late copies of build 0's events arrive.
		before := e.handled("log_uploaded") + e.handled("started")
		e.publishBuild("log_uploaded", goodBuilder, c.Build.Number, retryMsg)
		e.publishBuild("started", goodBuilder, c.Build.Number, BuildPayload{RequestIDs: []int64{brid},
			Build: BuildStatus{BuilderName: goodBuilder, Number: c.Build.Number, Properties: props(PropertyTriple("taskId", taskID, "bbb"))}})
		waitFor(t, "copies handled", func() bool { return e.handled("log_uploaded")+e.handled("started") >= before+2 })
		st := e.status(taskID)
		if len(st.Runs) != 2 || st.Runs[1].State != "running" {
			t.Fatalf("runs after late copies = %+v, want run 1 still running", st.Runs)
		}
		a.finish(client.Success, nil, "")
		e.waitRun(taskID, 1, "completed", "")
	})
}
