package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// pendingFlow is how a TC listener combines the bridge DB and the
// SchedulerDB for a valid task-pending (docs/bridge.md, "No double build
// request", and steps 5 and 6 of "TC listener") so that no
// interleaving of duplicate messages, instances and crashes makes a second
// build request for one (taskId, runId):
//
//  1. a row for the task with a brid and runId >= the run: duplicate, stop;
//     with a lower runId: UpdateRunID (monotonic) and stop.
//  2. Create the row; whoever created it or finds it still without a brid
//     goes on (an unbound row is an injection in flight or interrupted).
//  3. Inject, which is idempotent per (taskId, scheduled): every instance
//     that gets here for the same run receives the same brid.
//  4. SetBuildRequestID, which only fills a NULL brid.
func pendingFlow(ctx context.Context, st *Store, sdb *schedulerdb.DB, in schedulerdb.Injection, runID int) (int64, error) {
	row, err := st.GetTask(ctx, in.TaskID)
	switch {
	case err == nil && row.BuildRequestID != nil:
		if row.RunID < runID {
			if _, err := st.UpdateRunID(ctx, *row.BuildRequestID, runID); err != nil {
				return 0, err
			}
		}
		return *row.BuildRequestID, nil
	case err == nil && row.RunID > runID:
		return 0, nil // an older run's message, reordered
	case err != nil && !errors.Is(err, ErrNotFound):
		return 0, err
	}
	row, _, err = st.Create(ctx, NewTask{TaskID: in.TaskID, RunID: runID})
	if err != nil {
		return 0, err
	}
	if row.BuildRequestID != nil {
		return *row.BuildRequestID, nil
	}
	inj, err := sdb.Inject(ctx, in)
	if err != nil {
		return 0, err
	}
	if _, err := st.SetBuildRequestID(ctx, in.TaskID, runID, inj.BRID); err != nil {
		return 0, err
	}
	return inj.BRID, nil
}

type pair struct {
	name     string
	store    Dialect
	schedule schedulerdb.Dialect
}

func openPair(t *testing.T, p pair) (func() *Store, func() *schedulerdb.DB) {
	t.Helper()
	ctx := context.Background()
	storeDSN := freshDSN(t, p.store)
	var schedDSN string
	if p.schedule == schedulerdb.SQLite {
		schedDSN = filepath.Join(t.TempDir(), "scheduler.db")
	} else {
		schedDSN = testsvc.MySQL(t)
	}
	openStore := func() *Store {
		s, err := Open(ctx, p.store, storeDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	openSched := func() *schedulerdb.DB {
		db, err := schedulerdb.Open(ctx, p.schedule, schedDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := db.CreateSchema(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	return openStore, openSched
}

var pairs = []pair{
	{"sqlite+sqlite", SQLite, schedulerdb.SQLite},
	{"mysql+mysql", MySQL, schedulerdb.MySQL},
	{"postgres+mysql", Postgres, schedulerdb.MySQL},
}

func pendingInjection(taskID string) schedulerdb.Injection {
	return schedulerdb.Injection{
		TaskID:      taskID,
		BuilderName: "builder good name",
		Sourcestamp: &schedulerdb.SourcestampSpec{Branch: "integration/mozilla-inbound"},
		Properties:  map[string]json.RawMessage{"product": json.RawMessage(`"foo"`)},
		Scheduled:   time.Unix(1_700_000_060, 0),
	}
}

func requestsFor(t *testing.T, sdb *schedulerdb.DB, taskID string) int {
	t.Helper()
	var n int
	if err := sdb.SQL().QueryRow(`SELECT COUNT(*) FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid
		WHERE bs.external_idstring = ?`, "taskId:"+taskID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The bridge's guarantee: one build request per (taskId, runId) when three
// instances handle the same task-pending many times at once.
func TestNoDoubleBuildRequestUnderConcurrentDuplicates(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			openStore, openSched := openPair(t, p)
			type instance struct {
				st  *Store
				sdb *schedulerdb.DB
			}
			insts := []instance{{openStore(), openSched()}, {openStore(), openSched()}, {openStore(), openSched()}}
			const tasks, copies = 5, 6
			var wg sync.WaitGroup
			brids := make([][]int64, tasks)
			var mu sync.Mutex
			for task := range tasks {
				taskID := taskT[:20] + string(rune('a'+task)) + "Q"
				for c := range copies {
					wg.Add(1)
					go func() {
						defer wg.Done()
						in := insts[c%len(insts)]
						brid, err := pendingFlow(context.Background(), in.st, in.sdb, pendingInjection(taskID), 0)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						brids[task] = append(brids[task], brid)
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			for task := range tasks {
				taskID := taskT[:20] + string(rune('a'+task)) + "Q"
				if n := requestsFor(t, insts[0].sdb, taskID); n != 1 {
					t.Errorf("%s: %d build requests, want 1", taskID, n)
				}
				for _, b := range brids[task] {
					if b != brids[task][0] || b == 0 {
						t.Errorf("%s: handlers saw brids %v, want one", taskID, brids[task])
						break
					}
				}
				row, err := insts[0].st.GetTask(context.Background(), taskID)
				if err != nil || row.BuildRequestID == nil || *row.BuildRequestID != brids[task][0] {
					t.Errorf("%s: row = %+v, %v", taskID, row, err)
				}
			}
		})
	}
}

// A crash between the row insert and the brid (before or after the
// SchedulerDB injection) no longer strands the task; the redelivered message
// finishes the job without a second build request.
func TestCrashedInjectionIsCompletedByRedelivery(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			openStore, openSched := openPair(t, p)
			st, sdb := openStore(), openSched()
			ctx := context.Background()

			// Crash right after the insert.
			before := "crashBeforeInjectQQQQQ"
			if _, _, err := st.Create(ctx, NewTask{TaskID: before, RunID: 0}); err != nil {
				t.Fatal(err)
			}
			// Crash after the injection, before the brid was recorded.
			after := "crashAfterInjectQQQQQQ"
			if _, _, err := st.Create(ctx, NewTask{TaskID: after, RunID: 0}); err != nil {
				t.Fatal(err)
			}
			first, err := sdb.Inject(ctx, pendingInjection(after))
			if err != nil {
				t.Fatal(err)
			}
			for _, taskID := range []string{before, after} {
				brid, err := pendingFlow(ctx, st, sdb, pendingInjection(taskID), 0)
				if err != nil || brid == 0 {
					t.Fatalf("%s: redelivery = %d, %v", taskID, brid, err)
				}
				if taskID == after && brid != first.BRID {
					t.Errorf("%s: redelivery bound brid %d, the crashed injection made %d", taskID, brid, first.BRID)
				}
				if n := requestsFor(t, sdb, taskID); n != 1 {
					t.Errorf("%s: %d build requests, want 1", taskID, n)
				}
				row, err := st.GetTask(ctx, taskID)
				if err != nil || row.BuildRequestID == nil || *row.BuildRequestID != brid {
					t.Errorf("%s: row = %+v, %v", taskID, row, err)
				}
			}
			// A later run of the same task only bumps runId.
			brid, err := pendingFlow(ctx, st, sdb, pendingInjection(before), 1)
			if err != nil {
				t.Fatal(err)
			}
			row, _ := st.GetTask(ctx, before)
			if row.RunID != 1 || *row.BuildRequestID != brid || requestsFor(t, sdb, before) != 1 {
				t.Errorf("rerun: row %+v, %d requests", row, requestsFor(t, sdb, before))
			}
		})
	}
}
