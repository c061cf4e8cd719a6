package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Task is one row of the tasks table. Times are epoch seconds.
type Task struct {
	ID             int64
	BuildRequestID *int64 // nil until the build request exists
	TaskID         string
	RunID          int
	CreatedDate    int64  // task.created (informational)
	ProcessedDate  int64  // when the row was inserted (informational)
	TakenUntil     *int64 // the current claim's takenUntil; nil: not started in Buildbot
	LeaseOwner     string // the instance holding the reflector lease, "" for none
	LeaseUntil     int64  // when that lease ends; 0 for none
}

// NewTask is what Create needs to insert a row.
type NewTask struct {
	TaskID  string
	RunID   int
	Created time.Time // task.created
}

const taskColumns = `id, buildrequestId, taskId, runId, createdDate, processedDate, takenUntil, lease_owner, lease_until`

// listOrder is BBB's list order, takenUntil descending, with NULLs (not yet
// started) last on every dialect, then id for a stable order.
const listOrder = ` ORDER BY CASE WHEN takenUntil IS NULL THEN 1 ELSE 0 END, takenUntil DESC, id`

type scanner interface{ Scan(dest ...any) error }

func scanTask(sc scanner) (Task, error) {
	var (
		t                                   Task
		brid, created, processed, taken, lu sql.NullInt64
		owner                               sql.NullString
	)
	if err := sc.Scan(&t.ID, &brid, &t.TaskID, &t.RunID, &created, &processed, &taken, &owner, &lu); err != nil {
		return t, err
	}
	if brid.Valid {
		t.BuildRequestID = &brid.Int64
	}
	if taken.Valid {
		t.TakenUntil = &taken.Int64
	}
	t.CreatedDate, t.ProcessedDate = created.Int64, processed.Int64
	t.LeaseOwner, t.LeaseUntil = owner.String, lu.Int64
	return t, nil
}

func (s *Store) queryTasks(ctx context.Context, q querier, query string, args ...any) ([]Task, error) {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Store) oneTask(ctx context.Context, what, query string, args ...any) (Task, error) {
	var t Task
	err := s.retry(ctx, func() (err error) {
		t, err = scanTask(s.sql.QueryRowContext(ctx, s.q(query), args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("store: read %s: %w", what, err)
	}
	return t, nil
}

// Create inserts the row for a task run (BBB's create). When a row for
// the same (TaskID, RunID) exists already — another instance or a duplicate
// message got there first — it returns that row with created false and no
// error. Exactly one of any number of concurrent callers gets created true.
func (s *Store) Create(ctx context.Context, nt NewTask) (Task, bool, error) {
	switch {
	case nt.TaskID == "" || len(nt.TaskID) > 32:
		return Task{}, false, fmt.Errorf("store: create: TaskID %q must be 1 to 32 characters (a slugid): pass status.taskId", nt.TaskID)
	case nt.RunID < 0:
		return Task{}, false, fmt.Errorf("store: create task %s: RunID %d is negative: pass status.runs[-1].runId", nt.TaskID, nt.RunID)
	}
	var created int64
	if !nt.Created.IsZero() {
		created = nt.Created.Unix()
	}
	if s.dialect == MySQL {
		return s.createBatched(ctx, &createCall{nt: nt, created: created})
	}
	return s.createOne(ctx, nt, created)
}

// createOne is Create for one row.
func (s *Store) createOne(ctx context.Context, nt NewTask, created int64) (Task, bool, error) {
	// A duplicate whose row is deleted before it can be read goes round again.
	for attempt := 0; attempt < 5; attempt++ {
		processed := s.epoch()
		id, err := s.insertTask(ctx, nt, created, processed)
		if err != nil {
			return Task{}, false, fmt.Errorf("store: create task %s run %d: %w", nt.TaskID, nt.RunID, err)
		}
		if id != 0 {
			// Inserted: the row is what was written, no need to read it back.
			return Task{ID: id, TaskID: nt.TaskID, RunID: nt.RunID, CreatedDate: created, ProcessedDate: processed}, true, nil
		}
		t, err := s.oneTask(ctx, fmt.Sprintf("task %s run %d", nt.TaskID, nt.RunID),
			"SELECT "+taskColumns+" FROM tasks WHERE taskId = ? AND runId = ?", nt.TaskID, nt.RunID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return t, false, err
	}
	return Task{}, false, fmt.Errorf("store: create task %s run %d: the row kept disappearing", nt.TaskID, nt.RunID)
}

// insertTask inserts a row and returns its id, or 0 when a row for the task
// and run already exists.
func (s *Store) insertTask(ctx context.Context, nt NewTask, created, processed int64) (int64, error) {
	const insert = "INSERT INTO tasks (taskId, runId, createdDate, processedDate) VALUES (?, ?, ?, ?)"
	var id int64
	err := s.retry(ctx, func() error {
		id = 0
		if s.dialect != MySQL {
			err := s.sql.QueryRowContext(ctx, s.q(insert+" ON CONFLICT (taskId, runId) DO NOTHING RETURNING id"),
				nt.TaskID, nt.RunID, created, processed).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		}
		res, err := s.sql.ExecContext(ctx, insert, nt.TaskID, nt.RunID, created, processed)
		if uniqueViolation(err) {
			return nil
		}
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// ErrConflict is returned when a row already holds a different build request.
var ErrConflict = errors.New("store: task row already bound to another build request")

// SetBuildRequestID records the build request of a task run (BBB's
// setBuildRequestId). It never overwrites a different brid: that returns
// ErrConflict, so that two injections can never both be recorded.
func (s *Store) SetBuildRequestID(ctx context.Context, taskID string, runID int, brid int64) (Task, error) {
	err := s.retry(ctx, func() error {
		_, err := s.sql.ExecContext(ctx, s.q(`UPDATE tasks SET buildrequestId = ?
			WHERE taskId = ? AND runId = ? AND buildrequestId IS NULL`), brid, taskID, runID)
		return err
	})
	if err != nil {
		return Task{}, fmt.Errorf("store: set build request of task %s run %d: %w", taskID, runID, err)
	}
	t, err := s.oneTask(ctx, fmt.Sprintf("task %s run %d", taskID, runID),
		"SELECT "+taskColumns+" FROM tasks WHERE taskId = ? AND runId = ?", taskID, runID)
	if err != nil {
		return t, err
	}
	if t.BuildRequestID == nil || *t.BuildRequestID != brid {
		return t, fmt.Errorf("store: set build request %d of task %s run %d: %w (%v)", brid, taskID, runID, ErrConflict, deref(t.BuildRequestID))
	}
	return t, nil
}

// BindBuildRequest is SetBuildRequestID for callers that need no row back:
// the row is only read when the update changed nothing, to tell a missing
// row (ErrNotFound) from one bound to another request (ErrConflict). On
// MySQL, calls made at the same time share one UPDATE (batch.go).
func (s *Store) BindBuildRequest(ctx context.Context, taskID string, runID int, brid int64) error {
	if s.dialect == MySQL {
		return s.bindBatched(ctx, &bindCall{taskID: taskID, runID: runID, brid: brid})
	}
	return s.bindOne(ctx, taskID, runID, brid)
}

// bindOne is BindBuildRequest for one row.
func (s *Store) bindOne(ctx context.Context, taskID string, runID int, brid int64) error {
	n, err := s.exec(ctx, `UPDATE tasks SET buildrequestId = ?
		WHERE taskId = ? AND runId = ? AND buildrequestId IS NULL`, brid, taskID, runID)
	if err != nil {
		return fmt.Errorf("store: set build request of task %s run %d: %w", taskID, runID, err)
	}
	if n == 1 {
		return nil
	}
	_, err = s.SetBuildRequestID(ctx, taskID, runID, brid)
	return err
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// UpdateRunID moves the row of build request brid to a newer run (BBB's
// updateRunId): the TC listener's answer to a new run of a task whose build
// request Buildbot already holds (docs/bridge.md, "TC listener"). It only
// ever raises runId: an older or equal run is a duplicate or reordered
// message and reports false.
func (s *Store) UpdateRunID(ctx context.Context, brid int64, runID int) (bool, error) {
	n, err := s.exec(ctx, "UPDATE tasks SET runId = ? WHERE buildrequestId = ? AND runId < ?", runID, brid, runID)
	if err != nil {
		return false, fmt.Errorf("store: update run of build request %d to %d: %w", brid, runID, err)
	}
	return n > 0, nil
}

// UpdateTakenUntil records the takenUntil of the current claim of build
// request brid's task (BBB's updateTakenUntil).
func (s *Store) UpdateTakenUntil(ctx context.Context, brid int64, takenUntil time.Time) error {
	if _, err := s.exec(ctx, "UPDATE tasks SET takenUntil = ? WHERE buildrequestId = ?", takenUntil.Unix(), brid); err != nil {
		return fmt.Errorf("store: update takenUntil of build request %d: %w", brid, err)
	}
	return nil
}

// DeleteByBuildRequest deletes the rows of build request brid and returns
// how many there were.
func (s *Store) DeleteByBuildRequest(ctx context.Context, brid int64) (int64, error) {
	n, err := s.exec(ctx, "DELETE FROM tasks WHERE buildrequestId = ?", brid)
	if err != nil {
		return 0, fmt.Errorf("store: delete build request %d: %w", brid, err)
	}
	return n, nil
}

// DeleteByTask deletes every row of taskID and returns how many there were.
func (s *Store) DeleteByTask(ctx context.Context, taskID string) (int64, error) {
	n, err := s.exec(ctx, "DELETE FROM tasks WHERE taskId = ?", taskID)
	if err != nil {
		return 0, fmt.Errorf("store: delete task %s: %w", taskID, err)
	}
	return n, nil
}

// GetTask returns the row of taskID with the highest runId, or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, taskID string) (Task, error) {
	return s.oneTask(ctx, "task "+taskID,
		"SELECT "+taskColumns+" FROM tasks WHERE taskId = ? ORDER BY runId DESC LIMIT 1", taskID)
}

// GetTaskByBRID returns the row of build request brid, or ErrNotFound.
func (s *Store) GetTaskByBRID(ctx context.Context, brid int64) (Task, error) {
	return s.oneTask(ctx, fmt.Sprintf("build request %d", brid),
		"SELECT "+taskColumns+" FROM tasks WHERE buildrequestId = ? ORDER BY id LIMIT 1", brid)
}

// List returns every row, takenUntil descending, rows not yet started last.
func (s *Store) List(ctx context.Context) ([]Task, error) {
	var out []Task
	err := s.retry(ctx, func() (err error) {
		out, err = s.queryTasks(ctx, s.sql, "SELECT "+taskColumns+" FROM tasks"+listOrder)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list tasks: %w", err)
	}
	return out, nil
}

// Unbound returns rows still without a build request that were inserted
// before processedBefore: injections interrupted by a crash (docs/bridge.md,
// "No double build request"), which the caller completes by injecting again (the SchedulerDB injection
// is idempotent) and calling SetBuildRequestID.
func (s *Store) Unbound(ctx context.Context, processedBefore time.Time) ([]Task, error) {
	var out []Task
	err := s.retry(ctx, func() (err error) {
		out, err = s.queryTasks(ctx, s.sql, "SELECT "+taskColumns+
			" FROM tasks WHERE buildrequestId IS NULL AND processedDate < ? ORDER BY id", processedBefore.Unix())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list unbound tasks: %w", err)
	}
	return out, nil
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.sql.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
