package bridge

import (
	"context"
	"strconv"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
)

// A reclaim is due at reclaim_at = takenUntil - threshold, at that instant
// and not one second earlier (the instant BBB v2's own test uses).
func TestReclaimDue(t *testing.T) {
	taken := time.Date(2017, 3, 31, 22, 0, 0, 0, time.UTC)
	at := taken.Add(-300 * time.Second)
	if at.Unix() != 1490997300 {
		t.Fatalf("reclaim_at = %d, want 1490997300", at.Unix())
	}
	if !reclaimDue(taken, 300*time.Second, at) || reclaimDue(taken, 300*time.Second, at.Add(-time.Second)) {
		t.Error("reclaimDue must hold at reclaim_at and not a second before")
	}
}

// startedTask creates a task, lets the bridge inject it and starts its
// build through the master API; it returns the row.
func (e *env) startedTask(rb *runningBridge, worker string) (string, store.Task) {
	e.t.Helper()
	taskID := e.createTask(payload(goodBuilder), nil)
	e.waitRow(taskID)
	e.agent(rb, worker).claim()
	e.waitRun(taskID, 0, "running", "")
	var row store.Task
	waitFor(e.t, "takenUntil stored", func() bool {
		r, err := e.st.GetTask(context.Background(), taskID)
		row = r
		return err == nil && r.TakenUntil != nil
	})
	return taskID, row
}

// The reflector's pass under BBB v2's rules (docs/bridge.md, "Reflector"):
// reclaims when due and not before, leaves pending tasks alone, cancels the
// task of a request cancelled in Buildbot before it started, and never takes
// a claimed request, a completed build or a stale run for one to cancel.
func TestReflector(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{selfServe: true})
		rb := e.start()
		ctx := context.Background()
		b := rb.b
		pass := func() PassStats {
			t.Helper()
			st, err := b.ReflectOnce(ctx)
			if err != nil {
				t.Fatalf("ReflectOnce: %v", err)
			}
			return st
		}
		takenUntil := func(taskID string) int64 {
			r, err := e.st.GetTask(ctx, taskID)
			if err != nil || r.TakenUntil == nil {
				t.Fatalf("row of %s: %+v, %v", taskID, r, err)
			}
			return *r.TakenUntil
		}

		// A running task close to takenUntil is reclaimed and the new
		// takenUntil stored.
		t14, r14 := e.startedTask(rb, "w14")
		soon := time.Now().Add(60 * time.Second)
		if err := e.st.UpdateTakenUntil(ctx, *r14.BuildRequestID, soon); err != nil {
			t.Fatal(err)
		}
		// One with more than the threshold left is not.
		t15, r15 := e.startedTask(rb, "w15")
		later := time.Now().Add(1000 * time.Second)
		if err := e.st.UpdateTakenUntil(ctx, *r15.BuildRequestID, later); err != nil {
			t.Fatal(err)
		}
		// A pending task is left alone.
		t18 := e.createTask(payload("i'm a good builder"), nil)
		r18 := e.waitRow(t18)
		// A request cancelled in Buildbot before it started cancels the task.
		t19 := e.createTask(payload("i'm a good builder"), nil)
		r19 := e.waitRow(t19)
		if out, err := e.sdb.CancelRequest(ctx, *r19.BuildRequestID); err != nil || out.State != schedulerdb.CancelledPending {
			t.Fatalf("cancel request: %+v, %v", out, err)
		}
		// A request claimed and completed by a master whose started event
		// has not arrived is not mistaken for a cancel.
		t20 := e.createTask(payload(anotherBuilder), nil)
		r20 := e.waitRow(t20)
		m := schedulerdb.Master{Name: "bm", Incarnation: "1"}
		if c, err := e.sdb.Claim(ctx, m, []string{anotherBuilder}); err != nil || c == nil {
			t.Fatalf("claim: %v, %v", c, err)
		}
		if _, err := e.sdb.Complete(ctx, m, []int64{*r20.BuildRequestID}, schedulerdb.Success); err != nil {
			t.Fatal(err)
		}

		st := pass()
		if st.Reclaimed != 1 || st.Cancelled != 1 {
			t.Errorf("pass = %+v, want 1 reclaim and 1 cancel", st)
		}
		if got := takenUntil(t14); got <= soon.Unix()+300 {
			t.Errorf("14: takenUntil %d after reclaim, want the queue's new one (about now+1200)", got)
		}
		if got := takenUntil(t15); got != later.Unix() {
			t.Errorf("15: takenUntil changed to %d without a reclaim", got)
		}
		if r, err := e.st.GetTask(ctx, t18); err != nil || r.TakenUntil != nil || e.status(t18).Runs[0].State != "pending" {
			t.Errorf("18: pending task touched: %+v %v", r, err)
		}
		_ = r18
		e.waitRun(t19, 0, "exception", "canceled")
		if !e.noRow(t19) {
			t.Error("19: row of the cancelled request kept")
		}
		if e.noRow(t20) || e.status(t20).Runs[0].State != "pending" {
			t.Error("20: claimed request treated as cancelled")
		}

		// The build is complete in Buildbot but its log_uploaded
		// has not come: the run is still running, so it is reclaimed, and
		// no build is cancelled.
		t17, r17 := e.startedTask(rb, "w17")
		brid17 := *r17.BuildRequestID
		br17, _ := e.sdb.BuildRequest(ctx, brid17)
		if _, err := e.sdb.Complete(ctx, schedulerdb.Master{Name: br17.ClaimedByName, Incarnation: br17.ClaimedByIncarnation}, []int64{brid17}, schedulerdb.Success); err != nil {
			t.Fatal(err)
		}
		if err := e.st.UpdateTakenUntil(ctx, brid17, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st := pass(); st.Reclaimed != 1 {
			t.Errorf("17: pass = %+v, want the running run reclaimed", st)
		}
		if c, _ := e.selfServe.get(); len(c) != 0 {
			t.Errorf("17: self-serve calls %v, want none", c)
		}
		_ = t17

		// A run that is not running (RETRY left a stale takenUntil) is not
		// reclaimed.
		if err := e.reportAsRoot(t15, 0, "worker-shutdown"); err != nil {
			t.Fatal(err)
		}
		e.waitRun(t15, 1, "pending", "")
		waitFor(t, "row at run 1", func() bool { r, _ := e.st.GetTask(ctx, t15); return r.RunID == 1 })
		if err := e.st.UpdateTakenUntil(ctx, *r15.BuildRequestID, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		before := counterValue(b.metrics.reclaims.WithLabelValues("not-running"))
		pass()
		if got := counterValue(b.metrics.reclaims.WithLabelValues("not-running")) - before; got != 1 {
			t.Errorf("stale takenUntil of a pending run: not-running steps = %v, want 1", got)
		}
	})
}

// A running task past its deadline loses its row at its next reclaim (BBB
// v2's rule), and the TC listener's deadline-exceeded cancels the running
// build via self-serve.
func TestReflectorDeadlinePassed(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{selfServe: true})
		rb := e.start()
		ctx := context.Background()
		taskID := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) {
			d.Deadline = tcclient.Time(time.Now().Add(3 * time.Second))
		})
		e.waitRow(taskID)
		a := e.agent(rb, "w")
		build := a.claim()
		e.waitRun(taskID, 0, "running", "")
		e.waitRun(taskID, 0, "exception", "deadline-exceeded")
		waitFor(t, "self-serve build cancel", func() bool {
			c, _ := e.selfServe.get()
			return len(c) == 1 && c[0] == "DELETE /blah/build/"+strconv.FormatInt(build.BuildID, 10)
		})
		r, err := e.st.GetTask(ctx, taskID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.UpdateTakenUntil(ctx, *r.BuildRequestID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := rb.b.ReflectOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if !e.noRow(taskID) {
			t.Error("row of a task past its deadline kept")
		}
	})
}

// An injection interrupted between the row and the build request is finished
// by the reflector instead of leaving the task pending until its deadline.
func TestReflectorFinishesInterruptedInjection(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{mutate: func(c *Config) { c.Reflector.UnboundAfter = time.Second }})
		// No listener: only the row exists, as after a crash.
		b := e.newBridge()
		defer func() { _ = b.Close() }()
		e.sdb, e.st = b.SchedulerDB(), b.Store()
		ctx := context.Background()
		taskID := e.createTask(payload(goodBuilder), nil)
		if _, _, err := e.st.Create(ctx, storeNewTask(taskID)); err != nil {
			t.Fatal(err)
		}
		gone := e.createTask(payload(goodBuilder), nil)
		if _, _, err := e.st.Create(ctx, storeNewTask(gone)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.q.CancelTask(gone); err != nil {
			t.Fatal(err)
		}
		done := 0
		waitFor(t, "rows old enough", func() bool {
			st, err := b.ReflectOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			done += st.Injected + st.Dropped
			return done >= 2
		})
		e.waitRow(taskID)
		if n := e.requestsForTask(taskID); n != 1 {
			t.Errorf("%d build requests after finishing the injection, want 1", n)
		}
		if !e.noRow(gone) || e.requestsForTask(gone) != 0 {
			t.Error("row of a cancelled task was injected instead of dropped")
		}
	})
}

// Instances split the reflector's rows with leases, so one task is reclaimed
// once per pass however many instances run.
func TestReflectorLeasesSplitWork(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb1 := e.start()
		rb2, rb3 := e.start(), e.start()
		ctx := context.Background()
		var ids []string
		for i := range 6 {
			id, r := e.startedTask(rb1, "w"+string(rune('a'+i)))
			if err := e.st.UpdateTakenUntil(ctx, *r.BuildRequestID, time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		total := 0
		for _, rb := range []*runningBridge{rb1, rb2, rb3} {
			st, err := rb.b.ReflectOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			total += st.Reclaimed
		}
		if total != len(ids) {
			t.Errorf("%d reclaims by three instances for %d tasks, want one each", total, len(ids))
		}
	})
}

// A request Buildbot completed whose log_uploaded never came is resolved
// by the reflector from the SchedulerDB after reflector.lost_event_after.
func TestReflectorResolvesLostFinish(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{mutate: func(c *Config) { c.Reflector.LostEventAfter = time.Second }})
		rb := e.start()
		ctx := context.Background()
		taskID, row := e.startedTask(rb, "w")
		brid := *row.BuildRequestID
		br, _ := e.sdb.BuildRequest(ctx, brid)
		// The master completes the request; its log_uploaded is lost.
		if _, err := e.sdb.Complete(ctx, schedulerdb.Master{Name: br.ClaimedByName, Incarnation: br.ClaimedByIncarnation}, []int64{brid}, schedulerdb.Failure); err != nil {
			t.Fatal(err)
		}
		if st, err := rb.b.ReflectOnce(ctx); err != nil || e.noRow(taskID) {
			t.Fatalf("pass right after completion = %+v, %v; want the row kept during the grace time", st, err)
		}
		waitFor(t, "grace time", func() bool {
			if err := e.st.UpdateTakenUntil(ctx, brid, time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := rb.b.ReflectOnce(ctx); err != nil {
				t.Fatal(err)
			}
			return e.noRow(taskID)
		})
		e.waitRun(taskID, 0, "failed", "failed")
	})
}
