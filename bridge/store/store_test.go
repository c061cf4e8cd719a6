package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const taskT = "fN1ivKsXTxunRZfgkB2sZQ"

func TestMigrationsConcurrentAndIdempotent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		const n = 4
		stores := make([]*Store, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), tg.dialect, tg.dsn)
				if err != nil {
					errs <- err
					return
				}
				stores[i] = s
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, s := range stores {
			defer func() { _ = s.Close() }()
		}
		s := tg.open(t) // and once more, sequentially
		if c := count(t, s, "SELECT COUNT(*) FROM schema_migrations"); c != 1 {
			t.Errorf("schema_migrations has %d rows, want 1", c)
		}
		if v, err := s.SchemaVersion(context.Background()); err != nil || v != 1 {
			t.Errorf("SchemaVersion = %d, %v; want 1", v, err)
		}
		if _, err := s.SQL().Exec("SELECT " + taskColumns + " FROM tasks WHERE 1 = 0"); err != nil {
			t.Errorf("tasks columns: %v", err)
		}
		wantSkip := tg.dialect != SQLite // MariaDB here is 10.11
		if s.SkipLocked() != wantSkip {
			t.Errorf("SkipLocked = %v, want %v", s.SkipLocked(), wantSkip)
		}
	})
}

func TestMigrationRefusesNewerDatabase(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		if _, err := s.SQL().Exec(s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"), 99, "099_future.sql", 1); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), tg.dialect, tg.dsn)
		if err == nil {
			t.Fatal("a database at schema 99 was opened")
		}
		if want := "schema version 99"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	})
}

// Create inserts a task run's row once: a duplicate insert returns the
// existing row unchanged, not an error, and bad input names the field.
func TestCreateIsIdempotent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		clk := newClock(s)
		ctx := context.Background()
		row, created, err := s.Create(ctx, NewTask{TaskID: taskT, RunID: 0, Created: time.Unix(50, 0)})
		if err != nil || !created {
			t.Fatalf("Create = %+v, %v, %v", row, created, err)
		}
		if row.TaskID != taskT || row.RunID != 0 || row.CreatedDate != 50 || row.ProcessedDate != clk.now().Unix() ||
			row.BuildRequestID != nil || row.TakenUntil != nil || row.LeaseOwner != "" || row.LeaseUntil != 0 {
			t.Errorf("created row = %+v", row)
		}
		clk.advance(time.Minute)
		again, created, err := s.Create(ctx, NewTask{TaskID: taskT, RunID: 0, Created: time.Unix(99, 0)})
		if err != nil || created || again != row {
			t.Errorf("duplicate Create = %+v, %v, %v; want the first row unchanged", again, created, err)
		}
		if _, _, err := s.Create(ctx, NewTask{TaskID: "", RunID: 0}); err == nil || !strings.Contains(err.Error(), "TaskID") {
			t.Errorf("empty TaskID: %v", err)
		}
		if _, _, err := s.Create(ctx, NewTask{TaskID: taskT, RunID: -1}); err == nil || !strings.Contains(err.Error(), "RunID") {
			t.Errorf("negative RunID: %v", err)
		}
	})
}

// Many instances handling the same task-pending at once: one row, and
// exactly one of them is told it created it.
func TestCreateConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		stores := []*Store{tg.open(t), tg.open(t)}
		const n = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		createdCount := 0
		ids := map[int64]bool{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				row, created, err := stores[i%2].Create(context.Background(), NewTask{TaskID: taskT, RunID: 3})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[row.ID] = true
				if created {
					createdCount++
				}
			}()
		}
		wg.Wait()
		if createdCount != 1 || len(ids) != 1 {
			t.Errorf("created reported %d times, %d distinct rows returned; want 1 and 1", createdCount, len(ids))
		}
		if c := count(t, stores[0], "SELECT COUNT(*) FROM tasks"); c != 1 {
			t.Errorf("%d rows, want 1", c)
		}
	})
}

// The row operations: SetBuildRequestID, UpdateRunID (only ever raises
// runId), UpdateTakenUntil, the look-ups, List (takenUntil descending, the
// not-started rows last) and the deletes.
func TestRowOperations(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		ctx := context.Background()
		create(t, s, "task1", 0)
		create(t, s, "task2", 0)
		create(t, s, "task3", 0)
		for i, id := range []string{"task1", "task2", "task3"} {
			row, err := s.SetBuildRequestID(ctx, id, 0, int64(i+1))
			if err != nil || row.BuildRequestID == nil || *row.BuildRequestID != int64(i+1) {
				t.Fatalf("SetBuildRequestID(%s) = %+v, %v", id, row, err)
			}
		}
		if _, err := s.SetBuildRequestID(ctx, "task1", 0, 1); err != nil {
			t.Errorf("setting the same brid again: %v", err)
		}
		if _, err := s.SetBuildRequestID(ctx, "task1", 0, 7); !errors.Is(err, ErrConflict) {
			t.Errorf("overwriting brid: %v, want ErrConflict", err)
		}
		if _, err := s.SetBuildRequestID(ctx, "nosuch", 0, 7); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetBuildRequestID on a missing row: %v, want ErrNotFound", err)
		}

		// A newer run only bumps runId; older or equal runs are ignored.
		if ok, err := s.UpdateRunID(ctx, 1, 1); err != nil || !ok {
			t.Fatalf("UpdateRunID(1, 1) = %v, %v", ok, err)
		}
		for _, old := range []int{1, 0} {
			if ok, err := s.UpdateRunID(ctx, 1, old); err != nil || ok {
				t.Errorf("UpdateRunID(1, %d) after run 1 = %v, %v; want false", old, ok, err)
			}
		}
		row, err := s.GetTask(ctx, "task1")
		if err != nil || row.RunID != 1 || row.CreatedDate != 50 || *row.BuildRequestID != 1 {
			t.Errorf("after UpdateRunID row = %+v, %v", row, err)
		}

		if err := s.UpdateTakenUntil(ctx, 2, time.Unix(200, 0)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateTakenUntil(ctx, 3, time.Unix(100, 0)); err != nil {
			t.Fatal(err)
		}
		row, err = s.GetTaskByBRID(ctx, 2)
		if err != nil || row.TaskID != "task2" || row.TakenUntil == nil || *row.TakenUntil != 200 {
			t.Errorf("GetTaskByBRID(2) = %+v, %v", row, err)
		}
		// takenUntil descending; the not-started row (task1) last.
		list, err := s.List(ctx)
		if err != nil || len(list) != 3 || list[0].TaskID != "task2" || list[1].TaskID != "task3" || list[2].TaskID != "task1" {
			t.Errorf("List = %+v, %v", list, err)
		}
		if n, err := s.DeleteByBuildRequest(ctx, 1); err != nil || n != 1 {
			t.Errorf("DeleteByBuildRequest(1) = %d, %v", n, err)
		}
		if _, err := s.GetTaskByBRID(ctx, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("brid 1 after delete: %v, want ErrNotFound", err)
		}
		if _, err := s.GetTaskByBRID(ctx, 2); err != nil {
			t.Errorf("delete of brid 1 removed brid 2: %v", err)
		}
		create(t, s, "task2", 5) // a second row for the same task
		if n, err := s.DeleteByTask(ctx, "task2"); err != nil || n != 2 {
			t.Errorf("DeleteByTask(task2) = %d, %v; want 2", n, err)
		}
		if _, err := s.GetTask(ctx, "task2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTask after DeleteByTask: %v", err)
		}
	})
}

func TestUnbound(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		clk := newClock(s)
		ctx := context.Background()
		create(t, s, "old", 0)
		create(t, s, "bound", 0)
		if _, err := s.SetBuildRequestID(ctx, "bound", 0, 1); err != nil {
			t.Fatal(err)
		}
		clk.advance(10 * time.Minute)
		create(t, s, "young", 0)
		got, err := s.Unbound(ctx, clk.now().Add(-5*time.Minute))
		if err != nil || len(got) != 1 || got[0].TaskID != "old" {
			t.Errorf("Unbound = %+v, %v; want only the old unbound row", got, err)
		}
	})
}

func TestMySQLSkipLockedDetection(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.19-MariaDB-0+deb12u1": true, "10.6.0-MariaDB": true, "10.5.22-MariaDB": false,
		"11.4.2-MariaDB": true, "8.0.36": true, "5.7.44-log": false, "garbage": false,
	} {
		if got := mysqlHasSkipLocked(v); got != want {
			t.Errorf("mysqlHasSkipLocked(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestParseDialect(t *testing.T) {
	for in, want := range map[string]Dialect{"sqlite": SQLite, "MariaDB": MySQL, "postgresql": Postgres} {
		if got, err := ParseDialect(in); err != nil || got != want {
			t.Errorf("ParseDialect(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDialect("oracle"); err == nil {
		t.Error("oracle accepted")
	}
}
