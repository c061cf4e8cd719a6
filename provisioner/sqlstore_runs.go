package provisioner

// Run reports and the black-hole detector's memory in the SQL store.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// RunRecord is a finished run as stored: the machine's report, the pool it
// served and the report's id (ids grow with insertion).
type RunRecord struct {
	client.RunReport
	ID        int64
	PoolID    string
	MachineID string
}

// Duration is how long the run took.
func (r *RunRecord) Duration() time.Duration { return r.Finished.Sub(r.Started) }

// Watch is the black-hole detector's memory of one machine.
type Watch struct {
	MachineID string
	// JudgedAfter: reports with ids up to it are not judged again.
	JudgedAfter int64
	// AutoUntil is the end of the detector's quarantine, nil when none.
	AutoUntil *time.Time
	// CanaryTask is the canary the machine was sent (empty when none
	// runs) and CanaryDeadline when its report is due.
	CanaryTask     string
	CanaryDeadline *time.Time
}

func (s *sqlStore) AddRunReports(ctx context.Context, runs []RunRecord, now time.Time) (int, error) {
	if len(runs) == 0 {
		return 0, nil
	}
	machineID := runs[0].MachineID
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("record runs of %s: begin: %w", machineID, err)
	}
	defer func() { _ = tx.Rollback() }()
	st, err := tx.PrepareContext(ctx, s.q(`INSERT INTO run_reports (pool_id, machine_id, task_id, run_id, kind, builder, build_number, result, reason, exit_code, started, finished, received, log)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`))
	if err != nil {
		return 0, fmt.Errorf("record runs of %s: prepare: %w", machineID, err)
	}
	defer st.Close()
	added := 0
	for _, r := range runs {
		var exit sql.NullInt64
		if r.ExitCode != nil {
			exit = sql.NullInt64{Int64: int64(*r.ExitCode), Valid: true}
		}
		res, err := st.ExecContext(ctx, r.PoolID, r.MachineID, r.TaskID, r.RunID, r.Kind, r.Builder, r.BuildNumber, r.Result, r.Reason, exit,
			ms(r.Started), ms(r.Finished), ms(now), r.Log)
		if err != nil {
			return 0, fmt.Errorf("record run %s/%d of %s: %w", r.TaskID, r.RunID, r.MachineID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			added++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("record runs of %s: commit: %w", machineID, err)
	}
	return added, nil
}

func (s *sqlStore) RunReports(ctx context.Context, poolID string, finishedSince, receivedSince time.Time) ([]RunRecord, error) {
	return s.queryRunReports(ctx, "runs of pool "+poolID, `pool_id = ? AND finished >= ? AND received >= ?`, poolID, ms(finishedSince), ms(receivedSince))
}

// runReportColumns are the columns scanRunReport reads, in its order; a
// canary's log is read only where it is shown (LatestCanary), not by the
// detector's passes over every run.
const runReportColumns = `id, pool_id, machine_id, task_id, run_id, kind, builder, build_number, result, reason, exit_code, started, finished`

// queryRunReports reads the run reports matching where (oldest finished
// first); what names them in errors.
func (s *sqlStore) queryRunReports(ctx context.Context, what, where string, args ...any) ([]RunRecord, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+runReportColumns+` FROM run_reports WHERE `+where+` ORDER BY finished, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	var out []RunRecord
	for rows.Next() {
		r, err := scanRunReport(rows)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

// scanRunReport reads one row of runReportColumns, then the columns
// after them into more.
func scanRunReport(row interface{ Scan(...any) error }, more ...any) (RunRecord, error) {
	var r RunRecord
	var exit sql.NullInt64
	var st, fin int64
	dest := append([]any{&r.ID, &r.PoolID, &r.MachineID, &r.TaskID, &r.RunID, &r.Kind, &r.Builder, &r.BuildNumber, &r.Result, &r.Reason, &exit, &st, &fin}, more...)
	if err := row.Scan(dest...); err != nil {
		return r, err
	}
	if exit.Valid {
		c := int(exit.Int64)
		r.ExitCode = &c
	}
	r.Started, r.Finished = fromMS(st), fromMS(fin)
	return r, nil
}

func (s *sqlStore) FindRunReport(ctx context.Context, machineID, taskID, kind string) (RunRecord, error) {
	r, err := scanRunReport(s.db.QueryRowContext(ctx, s.q(`SELECT `+runReportColumns+`
		FROM run_reports WHERE machine_id = ? AND task_id = ? AND kind = ? ORDER BY id DESC LIMIT 1`), machineID, taskID, kind))
	if errors.Is(err, sql.ErrNoRows) {
		return RunRecord{MachineID: machineID}, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read %s run %s of %s: %w", kind, taskID, machineID, err)
	}
	return r, nil
}

func (s *sqlStore) LatestCanary(ctx context.Context, machineID, taskID string) (RunRecord, error) {
	// The literal kind lets the partial indexes of 0006_run_report_log.sql
	// serve the query.
	where, args := `kind = 'canary'`, []any{}
	if machineID != "" {
		where, args = where+` AND machine_id = ?`, append(args, machineID)
	}
	if taskID != "" {
		where, args = where+` AND task_id = ?`, append(args, taskID)
	}
	var log string
	r, err := scanRunReport(s.db.QueryRowContext(ctx, s.q(`SELECT `+runReportColumns+`, log FROM run_reports WHERE `+where+` ORDER BY id DESC LIMIT 1`), args...), &log)
	if errors.Is(err, sql.ErrNoRows) {
		return RunRecord{}, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read the latest canary of machine %q, task %q: %w", machineID, taskID, err)
	}
	r.Log = log
	return r, nil
}

func (s *sqlStore) PruneRunReports(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM run_reports WHERE finished < ?`), ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune run reports: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

func (s *sqlStore) Watches(ctx context.Context) (map[string]Watch, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT machine_id, judged_after, auto_until, canary_task, canary_deadline FROM blackhole_watch`)
	if err != nil {
		return nil, fmt.Errorf("read black-hole watch: %w", err)
	}
	defer rows.Close()
	out := map[string]Watch{}
	for rows.Next() {
		var w Watch
		var until, deadline sql.NullInt64
		if err := rows.Scan(&w.MachineID, &w.JudgedAfter, &until, &w.CanaryTask, &deadline); err != nil {
			return nil, fmt.Errorf("read black-hole watch: %w", err)
		}
		w.AutoUntil, w.CanaryDeadline = timePtr(until), timePtr(deadline)
		out[w.MachineID] = w
	}
	return out, rows.Err()
}

func (s *sqlStore) SaveWatch(ctx context.Context, w Watch) error {
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO blackhole_watch (machine_id, judged_after, auto_until, canary_task, canary_deadline) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (machine_id) DO UPDATE SET judged_after = excluded.judged_after, auto_until = excluded.auto_until,
		canary_task = excluded.canary_task, canary_deadline = excluded.canary_deadline`),
		w.MachineID, w.JudgedAfter, nullMS(w.AutoUntil), w.CanaryTask, nullMS(w.CanaryDeadline)); err != nil {
		return fmt.Errorf("save black-hole watch of %s: %w", w.MachineID, err)
	}
	return nil
}

func (s *sqlStore) ReleaseRuns(ctx context.Context, machineID string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO blackhole_watch (machine_id, judged_after, auto_until)
		VALUES (?, (SELECT COALESCE(MAX(id), 0) FROM run_reports WHERE machine_id = ?), NULL)
		ON CONFLICT (machine_id) DO UPDATE SET judged_after = excluded.judged_after, auto_until = NULL, canary_task = '', canary_deadline = NULL`), machineID, machineID); err != nil {
		return fmt.Errorf("release the judged runs of %s: %w", machineID, err)
	}
	return nil
}
