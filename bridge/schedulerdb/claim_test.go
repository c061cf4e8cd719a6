package schedulerdb

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

var (
	masterA = Master{Name: "bm01", Incarnation: "pid1-boot1"}
	masterB = Master{Name: "bm02", Incarnation: "pid2-boot1"}
)

func inject(t *testing.T, db *DB, in Injection) int64 {
	t.Helper()
	got, err := db.Inject(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return got.BRID
}

func taskID(i int) string { return fmt.Sprintf("task%018d", i) }

func claim(t *testing.T, db *DB, m Master, builders ...string) *Claimed {
	t.Helper()
	c, err := db.Claim(context.Background(), m, builders)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A master claims the highest priority first, then the oldest buildset
// (submitted_at).
func TestClaimOrder(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		newClock(db)
		late := inject(t, db, injection(taskID(1), "b", 300))
		early := inject(t, db, injection(taskID(2), "b", 100))
		hi := injection(taskID(3), "b", 500)
		hi.Priority = "high"
		high := inject(t, db, hi)
		other := inject(t, db, injection(taskID(4), "other", 1))
		for _, want := range []int64{high, early, late} {
			c := claim(t, db, masterA, "b")
			if c == nil || c.Request.ID != want {
				t.Fatalf("claimed %+v, want brid %d", c, want)
			}
		}
		if c := claim(t, db, masterA, "b"); c != nil {
			t.Fatalf("claimed %+v from an empty queue", c)
		}
		if c := claim(t, db, masterA, "b", "other"); c == nil || c.Request.ID != other {
			t.Fatalf("claim over two builders = %+v, want %d", c, other)
		}
	})
}

// The claim columns and the builds row a claim writes.
func TestClaimWritesColumnsAndBuild(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		clk := newClock(db)
		brid := inject(t, db, injection(taskA, "b", 100))
		c := claim(t, db, masterA, "b")
		br, err := db.BuildRequest(context.Background(), brid)
		if err != nil {
			t.Fatal(err)
		}
		now := clk.now().Unix()
		if br.ClaimedAt != now || br.ClaimedByName != masterA.Name || br.ClaimedByIncarnation != masterA.Incarnation || br.Complete {
			t.Errorf("claimed request = %+v", br)
		}
		builds, err := db.Builds(context.Background(), brid)
		if err != nil {
			t.Fatal(err)
		}
		if len(builds) != 1 || builds[0] != c.Build || c.Build.Number != 0 || c.Build.StartTime != now || c.Build.FinishTime != nil {
			t.Errorf("builds = %+v, claim returned %+v", builds, c.Build)
		}
	})
}

// A claim goes stale after an hour; an earlier incarnation of the same
// master (one that restarted) loses its claims at once.
func TestClaimStaleness(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		clk := newClock(db)
		brid := inject(t, db, injection(taskA, "b", 100))
		if c := claim(t, db, masterA, "b"); c == nil {
			t.Fatal("nothing claimed")
		}
		clk.advance(59 * time.Minute)
		if c := claim(t, db, masterB, "b"); c != nil {
			t.Fatalf("another master took a 59-minute-old claim: %+v", c)
		}
		restarted := Master{Name: masterA.Name, Incarnation: "pid9-boot2"}
		c := claim(t, db, restarted, "b")
		if c == nil || c.Request.ID != brid || c.Build.Number != 1 {
			t.Fatalf("restarted master claimed %+v, want brid %d as build 1", c, brid)
		}
		clk.advance(61 * time.Minute)
		c = claim(t, db, masterB, "b")
		if c == nil || c.Request.ID != brid {
			t.Fatalf("stale claim not taken over: %+v", c)
		}
		if held, err := db.Reclaim(context.Background(), restarted, []int64{brid}); err != nil || len(held) != 0 {
			t.Errorf("old holder still reclaims: %v, %v", held, err)
		}
	})
}

// Several instances claiming at once: every request claimed exactly once,
// build numbers unique per builder.
func TestClaimConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		dbs := []*DB{tg.open(t), tg.open(t)}
		const requests, workers = 60, 8
		for i := range requests {
			inject(t, dbs[0], injection(taskID(i), []string{"b1", "b2", "b3"}[i%3], int64(100+i%7)))
		}
		var mu sync.Mutex
		claimedBy := map[int64]string{}
		numbers := map[string]map[int]bool{}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := Master{Name: fmt.Sprintf("agent%d", w), Incarnation: "x"}
				for {
					c, err := dbs[w%2].Claim(context.Background(), m, []string{"b1", "b2", "b3"})
					if err != nil {
						errs <- err
						return
					}
					if c == nil {
						return
					}
					mu.Lock()
					if prev, dup := claimedBy[c.Request.ID]; dup {
						errs <- fmt.Errorf("brid %d claimed by %s and %s", c.Request.ID, prev, m.Name)
					}
					claimedBy[c.Request.ID] = m.Name
					if numbers[c.Request.BuilderName] == nil {
						numbers[c.Request.BuilderName] = map[int]bool{}
					}
					if numbers[c.Request.BuilderName][c.Build.Number] {
						errs <- fmt.Errorf("build number %d of %s given twice", c.Build.Number, c.Request.BuilderName)
					}
					numbers[c.Request.BuilderName][c.Build.Number] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(claimedBy) != requests {
			t.Errorf("%d requests claimed, want %d", len(claimedBy), requests)
		}
		if n := count(t, dbs[0], "SELECT COUNT(*) FROM builds"); n != requests {
			t.Errorf("%d builds rows, want %d", n, requests)
		}
		if n := count(t, dbs[0], "SELECT COUNT(*) FROM buildrequests WHERE claimed_at = 0"); n != 0 {
			t.Errorf("%d requests left unclaimed", n)
		}
	})
}

func TestReclaimAndPending(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		clk := newClock(db)
		ctx := context.Background()
		a := inject(t, db, injection(taskID(1), "b", 100))
		b := inject(t, db, injection(taskID(2), "b", 101))
		inject(t, db, injection(taskID(3), "c", 102))
		pending, err := db.PendingByBuilder(ctx)
		if err != nil || pending["b"] != 2 || pending["c"] != 1 || len(pending) != 2 {
			t.Fatalf("PendingByBuilder = %v, %v", pending, err)
		}
		claim(t, db, masterA, "b")
		list, err := db.Pending(ctx, "b", masterA, 10)
		if err != nil || len(list) != 1 || list[0].ID != b {
			t.Fatalf("Pending(b) = %+v, %v; want only %d", list, err, b)
		}
		clk.advance(50 * time.Minute)
		held, err := db.Reclaim(ctx, masterA, []int64{a, b})
		if err != nil || len(held) != 1 || held[0] != a {
			t.Fatalf("Reclaim = %v, %v; want [%d]", held, err, a)
		}
		br, _ := db.BuildRequest(ctx, a)
		if br.ClaimedAt != clk.now().Unix() {
			t.Errorf("claimed_at = %d after reclaim, want %d", br.ClaimedAt, clk.now().Unix())
		}
		clk.advance(50 * time.Minute) // 50 min after the reclaim: not stale
		if c := claim(t, db, masterB, "b"); c == nil || c.Request.ID != b {
			t.Fatalf("masterB claimed %+v, want only the unclaimed %d", c, b)
		}
		if pending, _ := db.PendingByBuilder(ctx); pending["b"] != 0 {
			t.Errorf("pending b = %d, want 0", pending["b"])
		}
	})
}
