package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func ids(tasks []Task) map[int64]bool {
	out := map[int64]bool{}
	for _, t := range tasks {
		out[t.ID] = true
	}
	return out
}

// The lease life cycle on one instance: take, renew, expire, release.
func TestLeaseLifeCycle(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		a, b := tg.open(t), tg.open(t)
		clk := newClock(a, b)
		ctx := context.Background()
		for i := range 5 {
			create(t, a, fmt.Sprintf("task%d", i), 0)
		}
		got, err := a.AcquireLeases(ctx, "A", time.Minute, 3)
		if err != nil || len(got) != 3 {
			t.Fatalf("A acquires = %d rows, %v; want 3", len(got), err)
		}
		for _, row := range got {
			if row.LeaseOwner != "A" || row.LeaseUntil != clk.now().Unix()+60 {
				t.Errorf("leased row = %+v", row)
			}
		}
		rest, err := b.AcquireLeases(ctx, "B", time.Minute, 10)
		if err != nil || len(rest) != 2 {
			t.Fatalf("B acquires = %d rows, %v; want the 2 A does not hold", len(rest), err)
		}
		for id := range ids(rest) {
			if ids(got)[id] {
				t.Errorf("row %d leased to both A and B", id)
			}
		}
		// A renews its own rows, and only those.
		clk.advance(30 * time.Second)
		renewed, err := a.AcquireLeases(ctx, "A", time.Minute, 10)
		if err != nil || len(renewed) != 3 || renewed[0].LeaseUntil != clk.now().Unix()+60 {
			t.Fatalf("A renews = %+v, %v", renewed, err)
		}
		// B's leases expire (B died); A takes them over.
		clk.advance(45 * time.Second)
		all, err := a.AcquireLeases(ctx, "A", time.Minute, 10)
		if err != nil || len(all) != 5 {
			t.Fatalf("A after B's leases expired = %d rows, %v; want 5", len(all), err)
		}
		// Release gives rows back at once.
		if n, err := a.ReleaseLeases(ctx, "A", all[0].ID, all[1].ID); err != nil || n != 2 {
			t.Fatalf("release = %d, %v", n, err)
		}
		back, err := b.AcquireLeases(ctx, "B", time.Minute, 10)
		if err != nil || len(back) != 2 {
			t.Fatalf("B after A released 2 = %d rows, %v", len(back), err)
		}
		if n, err := a.ReleaseLeases(ctx, "A"); err != nil || n != 3 {
			t.Errorf("release all of A = %d, %v; want 3", n, err)
		}
		if _, err := a.AcquireLeases(ctx, "", time.Minute, 1); err == nil {
			t.Error("empty owner accepted")
		}
	})
}

// Two instances acquiring at the same time get disjoint sets, round after
// round, and between them cover every row.
func TestLeasesConcurrentAreDisjoint(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		const rows, instances, rounds = 40, 3, 10
		stores := make([]*Store, instances)
		for i := range stores {
			stores[i] = tg.open(t)
		}
		for i := range rows {
			create(t, stores[0], fmt.Sprintf("task%02d", i), 0)
		}
		ctx := context.Background()
		for round := range rounds {
			got := make([][]Task, instances)
			var wg sync.WaitGroup
			for i := range instances {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					got[i], err = stores[i].AcquireLeases(ctx, fmt.Sprintf("inst%d", i), time.Minute, rows/2)
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			owner := map[int64]int{}
			for i, tasks := range got {
				for _, row := range tasks {
					if prev, dup := owner[row.ID]; dup {
						t.Fatalf("round %d: row %d leased to inst%d and inst%d", round, row.ID, prev, i)
					}
					owner[row.ID] = i
				}
			}
			if len(owner) != min(rows, instances*rows/2) {
				t.Errorf("round %d: %d rows leased, want %d", round, len(owner), rows)
			}
			held := count(t, stores[0], "SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL")
			if held != len(owner) {
				t.Errorf("round %d: %d rows hold a lease in the table, %d returned", round, held, len(owner))
			}
			for i := range instances {
				if _, err := stores[i].ReleaseLeases(ctx, fmt.Sprintf("inst%d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
