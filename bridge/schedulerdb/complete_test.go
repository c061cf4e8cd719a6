package schedulerdb

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Completing a build as a master does, for each terminal result: the
// request's result, the buildset's (FAILURE unless SUCCESS or WARNINGS), the
// build's finish_time; a repeated finish changes nothing.
func TestCompleteResults(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		clk := newClock(db)
		ctx := context.Background()
		for i, tc := range []struct {
			result   Result
			buildset Result
		}{
			{Success, Success}, {Warnings, Success}, {Failure, Failure}, {Exception, Failure},
			{Cancelled, Failure}, {Skipped, Failure},
		} {
			brid := inject(t, db, injection(taskID(i), "b", 100))
			c := claim(t, db, masterA, "b")
			clk.advance(time.Minute)
			done, err := db.Complete(ctx, masterA, []int64{brid}, tc.result)
			if err != nil || len(done) != 1 || done[0] != brid || c.Request.ID != brid {
				t.Fatalf("%s: Complete = %v, %v", tc.result, done, err)
			}
			now := clk.now().Unix()
			br, _ := db.BuildRequest(ctx, brid)
			if !br.Complete || br.Results == nil || *br.Results != tc.result || br.CompleteAt == nil || *br.CompleteAt != now {
				t.Errorf("%s: request = %+v", tc.result, br)
			}
			bs, _ := db.Buildset(ctx, br.BuildsetID)
			if !bs.Complete || bs.Results == nil || *bs.Results != tc.buildset || bs.CompleteAt == nil || *bs.CompleteAt != now {
				t.Errorf("%s: buildset = %+v, want complete with %s", tc.result, bs, tc.buildset)
			}
			builds, _ := db.Builds(ctx, brid)
			if len(builds) != 1 || builds[0].FinishTime == nil || *builds[0].FinishTime != now {
				t.Errorf("%s: builds = %+v", tc.result, builds)
			}
			// A repeated finish changes nothing.
			if done, err := db.Complete(ctx, masterA, []int64{brid}, Failure); err != nil || len(done) != 0 {
				t.Errorf("%s: second Complete = %v, %v", tc.result, done, err)
			}
			if br2, _ := db.BuildRequest(ctx, brid); *br2.Results != tc.result {
				t.Errorf("%s: second Complete changed result to %s", tc.result, *br2.Results)
			}
		}
	})
}

// RETRY puts the same brid back unclaimed; the next claim adds a second
// builds row.
func TestCompleteRetry(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		newClock(db)
		ctx := context.Background()
		brid := inject(t, db, injection(taskA, "b", 100))
		claim(t, db, masterA, "b")
		if done, err := db.Complete(ctx, masterA, []int64{brid}, Retry); err != nil || len(done) != 1 {
			t.Fatalf("Complete(RETRY) = %v, %v", done, err)
		}
		br, _ := db.BuildRequest(ctx, brid)
		if br.Complete || br.ClaimedAt != 0 || br.Results != nil || br.CompleteAt != nil {
			t.Errorf("after RETRY request = %+v", br)
		}
		if n := nullString(t, db, "SELECT claimed_by_name FROM buildrequests WHERE id = ?", brid); n.Valid {
			t.Errorf("claimed_by_name = %q after RETRY, want NULL", n.String)
		}
		if n := nullString(t, db, "SELECT claimed_by_incarnation FROM buildrequests WHERE id = ?", brid); n.Valid {
			t.Errorf("claimed_by_incarnation = %q after RETRY, want NULL", n.String)
		}
		bs, _ := db.Buildset(ctx, br.BuildsetID)
		if bs.Complete {
			t.Error("buildset completed by a RETRY")
		}
		c := claim(t, db, masterB, "b")
		if c == nil || c.Request.ID != brid || c.Build.Number != 1 {
			t.Fatalf("re-claim after RETRY = %+v, want brid %d build 1", c, brid)
		}
		builds, _ := db.Builds(ctx, brid)
		if len(builds) != 2 || builds[0].FinishTime == nil || builds[1].FinishTime != nil {
			t.Errorf("builds after RETRY and re-claim = %+v", builds)
		}
	})
}

// Only the holder of the claim completes a request.
func TestCompleteNeedsTheClaim(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		newClock(db)
		brid := inject(t, db, injection(taskA, "b", 100))
		claim(t, db, masterA, "b")
		if done, err := db.Complete(context.Background(), masterB, []int64{brid}, Success); err != nil || len(done) != 0 {
			t.Fatalf("Complete by another master = %v, %v", done, err)
		}
		if br, _ := db.BuildRequest(context.Background(), brid); br.Complete {
			t.Error("request completed by a master that does not hold it")
		}
		if _, err := db.Complete(context.Background(), masterA, []int64{brid}, Result(9)); err == nil {
			t.Error("unknown result code accepted")
		}
	})
}

// The self-serve agent's cancel applied directly: an unclaimed request becomes
// complete with FAILURE and reads as cancelled before start, the buildset
// untouched; a claimed one is reported running with its builds; a missing
// one is ErrNotFound.
func TestCancelRequest(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		clk := newClock(db)
		ctx := context.Background()
		pending := inject(t, db, injection(taskID(1), "b", 100))
		running := inject(t, db, injection(taskID(2), "c", 100))
		c := claim(t, db, masterA, "c")

		clk.advance(time.Minute)
		out, err := db.CancelRequest(ctx, pending)
		if err != nil || out.State != CancelledPending {
			t.Fatalf("cancel pending = %+v, %v", out, err)
		}
		br, _ := db.BuildRequest(ctx, pending)
		if !br.Complete || br.Results == nil || *br.Results != Failure || br.ClaimedAt != 0 ||
			br.CompleteAt == nil || *br.CompleteAt != clk.now().Unix() || !br.CancelledBeforeStart() {
			t.Errorf("cancelled request = %+v", br)
		}
		if bs, _ := db.Buildset(ctx, br.BuildsetID); bs.Complete {
			t.Error("cancel touched the buildset")
		}
		if out, err := db.CancelRequest(ctx, pending); err != nil || out.State != AlreadyComplete {
			t.Errorf("second cancel = %+v, %v", out, err)
		}

		out, err = db.CancelRequest(ctx, running)
		if err != nil || out.State != Running || len(out.Builds) != 1 || out.Builds[0].ID != c.Build.ID {
			t.Fatalf("cancel running = %+v, %v", out, err)
		}
		if br, _ := db.BuildRequest(ctx, running); br.Complete {
			t.Error("cancel of a running request completed it")
		}
		// The master then stops the build and completes it CANCELLED.
		if _, err := db.Complete(ctx, masterA, []int64{running}, Cancelled); err != nil {
			t.Fatal(err)
		}
		got, err := db.CancelledBeforeStart(ctx, []int64{pending, running, 999})
		if err != nil || len(got) != 1 || got[0] != pending {
			t.Errorf("CancelledBeforeStart = %v, %v; want [%d]", got, err, pending)
		}
		if _, err := db.CancelRequest(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("cancel of a missing request = %v, want ErrNotFound", err)
		}
	})
}

// Only requests complete and never claimed (claimed_at 0) count as cancelled
// before start, with the claimed_at values written directly.
func TestCancelledBeforeStartQuery(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		one := inject(t, db, injection(taskID(1), "b", 100))
		two := inject(t, db, injection(taskID(2), "b", 100))
		three := inject(t, db, injection(taskID(3), "b", 100))
		exec(t, db, "UPDATE buildrequests SET complete = 1 WHERE id = ?", one)
		exec(t, db, "UPDATE buildrequests SET complete = 1, claimed_at = 5 WHERE id = ?", two)
		got, err := db.CancelledBeforeStart(context.Background(), []int64{one, two, three})
		if err != nil || len(got) != 1 || got[0] != one {
			t.Errorf("CancelledBeforeStart = %v, %v; want [%d]", got, err, one)
		}
	})
}

// A pending cancel racing a claim: the request ends either cancelled or
// claimed, never both.
func TestCancelRacesClaim(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db, db2 := tg.open(t), tg.open(t)
		ctx := context.Background()
		const n = 20
		for i := range n {
			brid := inject(t, db, injection(taskID(i), "b", 100))
			done := make(chan *Claimed, 1)
			go func() {
				c, err := db2.Claim(ctx, masterA, []string{"b"})
				if err != nil {
					t.Error(err)
				}
				done <- c
			}()
			out, err := db.CancelRequest(ctx, brid)
			if err != nil {
				t.Fatal(err)
			}
			c := <-done
			switch {
			case out.State == CancelledPending && c != nil:
				t.Fatalf("brid %d both cancelled and claimed (%+v)", brid, c)
			case out.State == Running && c == nil:
				t.Fatalf("brid %d reported running but nobody claimed it", brid)
			}
			if c != nil {
				if _, err := db.Complete(ctx, masterA, []int64{c.Request.ID}, Success); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestCancelBuild(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		newClock(db)
		ctx := context.Background()
		brid := inject(t, db, injection(taskA, "b", 100))
		c := claim(t, db, masterA, "b")
		out, err := db.CancelBuild(ctx, c.Build.ID)
		if err != nil || out.State != Running || len(out.Builds) != 1 || out.Request.ID != brid {
			t.Fatalf("CancelBuild running = %+v, %v", out, err)
		}
		if _, err := db.Complete(ctx, masterA, []int64{brid}, Retry); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CancelBuild(ctx, c.Build.ID); !errors.Is(err, ErrNotClaimed) {
			t.Errorf("CancelBuild of an unclaimed request = %v, want ErrNotClaimed", err)
		}
		if _, err := db.CancelBuild(ctx, 12345); !errors.Is(err, ErrNotFound) {
			t.Errorf("CancelBuild of a missing build = %v, want ErrNotFound", err)
		}
		claim(t, db, masterA, "b")
		if _, err := db.Complete(ctx, masterA, []int64{brid}, Success); err != nil {
			t.Fatal(err)
		}
		if out, err := db.CancelBuild(ctx, c.Build.ID); err != nil || out.State != AlreadyComplete {
			t.Errorf("CancelBuild of a finished request = %+v, %v", out, err)
		}
	})
}

func TestSchemaIdempotentAndComplete(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		other := tg.open(t) // CreateSchema again, through a second handle
		if err := other.CreateSchema(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM version"); n != 1 {
			t.Errorf("version rows = %d, want 1", n)
		}
		if v := count(t, db, "SELECT version FROM version"); v != schemaVersion {
			t.Errorf("version = %d, want %d", v, schemaVersion)
		}
		for _, tbl := range tables {
			cols := ""
			for i, c := range tbl.columns {
				if i > 0 {
					cols += ", "
				}
				cols += c.name
			}
			if _, err := db.SQL().Exec("SELECT " + cols + " FROM " + tbl.name + " WHERE 1 = 0"); err != nil {
				t.Errorf("table %s: %v", tbl.name, err)
			}
		}
		// Defaults of the claim columns, for rows written by other tools.
		exec(t, db, "INSERT INTO buildrequests (buildsetid, buildername, submitted_at) VALUES (1, 'x', 5)")
		var claimedAt, complete, priority int
		if err := db.SQL().QueryRow("SELECT claimed_at, complete, priority FROM buildrequests").Scan(&claimedAt, &complete, &priority); err != nil {
			t.Fatal(err)
		}
		if claimedAt != 0 || complete != 0 || priority != 0 {
			t.Errorf("defaults claimed_at=%d complete=%d priority=%d, want 0 0 0", claimedAt, complete, priority)
		}
	})
}
