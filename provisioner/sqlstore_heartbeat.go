package provisioner

// Heartbeats, directives and the machines' recorded actions and task
// runs in the SQL store.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

func (s *sqlStore) Heartbeat(ctx context.Context, machineID string, hb client.HeartbeatRequest, now time.Time) error {
	var cur client.TaskRef
	if hb.CurrentTask != nil {
		cur = *hb.CurrentTask
		if cur.Kind == "" {
			cur.Kind = client.KindTaskcluster
		}
	}
	health := hb.Health
	if health == nil {
		health = []client.HealthResult{}
	}
	counters := hb.Counters
	if counters == nil {
		counters = map[string]int64{}
	}
	// Most heartbeats repeat the current run: one UPDATE that matches only
	// then. A run is its task, run, kind and Buildbot build, so a retried
	// build of the same task is a new run. Otherwise read the previous
	// run to record it as finished.
	// Prepare before BEGIN: SQLite's single connection is the
	// transaction's until it ends.
	st, err := s.prepared(ctx, `UPDATE machines SET state = ?, health = ?, counters = ?, last_heartbeat = ? WHERE machine_id = ?
		AND current_task_id = ? AND current_run_id = ? AND current_kind = ? AND current_builder = ? AND current_build_number = ?`)
	if err != nil {
		return err
	}
	args := []any{hb.State, jsonText(health), jsonText(counters), ms(now), machineID, cur.TaskID, cur.RunID, cur.Kind, cur.Builder, cur.BuildNumber}
	if s.d.heartbeatTxSetup == "" {
		// A single statement needs no transaction of its own.
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("heartbeat %s: update: %w", machineID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("heartbeat %s: begin: %w", machineID, err)
	}
	defer func() { _ = tx.Rollback() }()
	updated := false
	if s.d.heartbeatTxSetup != "" {
		if _, err := tx.ExecContext(ctx, s.d.heartbeatTxSetup); err != nil {
			return fmt.Errorf("heartbeat %s: %w", machineID, err)
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("heartbeat %s: update: %w", machineID, err)
		}
		n, _ := res.RowsAffected()
		updated = n == 1
	}
	if !updated {
		if err := s.heartbeatTaskChanged(ctx, tx, machineID, hb.State, cur, health, counters, now); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("heartbeat %s: commit: %w", machineID, err)
	}
	return nil
}
func (s *sqlStore) heartbeatTaskChanged(ctx context.Context, tx *sql.Tx, machineID, state string, cur client.TaskRef, health []client.HealthResult, counters map[string]int64, now time.Time) error {
	var poolID, prevTask string
	var prevRun int
	var started sql.NullInt64
	err := tx.QueryRowContext(ctx, s.q(`SELECT pool_id, current_task_id, current_run_id, task_started FROM machines WHERE machine_id = ?`), machineID).
		Scan(&poolID, &prevTask, &prevRun, &started)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("machine %s: %w", machineID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("heartbeat %s: read: %w", machineID, err)
	}
	if prevTask != "" && started.Valid {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO task_runs (pool_id, machine_id, task_id, run_id, started, finished) VALUES (?, ?, ?, ?, ?, ?)`),
			poolID, machineID, prevTask, prevRun, started.Int64, ms(now)); err != nil {
			return fmt.Errorf("heartbeat %s: record finished run: %w", machineID, err)
		}
	}
	started = sql.NullInt64{}
	if cur.TaskID != "" {
		started = sql.NullInt64{Int64: ms(now), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE machines SET state = ?, current_task_id = ?, current_run_id = ?, task_started = ?, health = ?, counters = ?, last_heartbeat = ?,
		current_kind = ?, current_builder = ?, current_build_number = ? WHERE machine_id = ?`),
		state, cur.TaskID, cur.RunID, started, jsonText(health), jsonText(counters), ms(now), cur.Kind, cur.Builder, cur.BuildNumber, machineID); err != nil {
		return fmt.Errorf("heartbeat %s: update: %w", machineID, err)
	}
	return nil
}
func (s *sqlStore) AddDirective(ctx context.Context, machineID string, d client.Directive) (int64, error) {
	var id int64
	d.ID = 0
	if d.Created.IsZero() {
		d.Created = time.Now().UTC()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO directives (machine_id, body, created) VALUES (?, ?, ?) RETURNING id`), machineID, jsonText(d), ms(d.Created)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("queue %s directive for %s: %w", d.Kind, machineID, err)
	}
	return id, nil
}
func (s *sqlStore) Directives(ctx context.Context, machineID string, after int64) ([]client.Directive, error) {
	if after > 0 {
		if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM directives WHERE machine_id = ? AND id <= ?`), machineID, after); err != nil {
			return nil, fmt.Errorf("forget handled directives of %s: %w", machineID, err)
		}
	}
	st, err := s.prepared(ctx, `SELECT id, body FROM directives WHERE machine_id = ? AND id > ? ORDER BY id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, machineID, after)
	if err != nil {
		return nil, fmt.Errorf("read directives of %s: %w", machineID, err)
	}
	defer rows.Close()
	out := []client.Directive{}
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("read directives of %s: %w", machineID, err)
		}
		var d client.Directive
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return nil, fmt.Errorf("decode directive %d of %s: %w", id, machineID, err)
		}
		d.ID = id
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read directives of %s: %w", machineID, err)
	}
	return out, nil
}
func (s *sqlStore) RecentDirectiveMachines(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT DISTINCT machine_id FROM directives WHERE created >= ?`), ms(since))
	if err != nil {
		return nil, fmt.Errorf("read recent directives: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read recent directives: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
func (s *sqlStore) AddAction(ctx context.Context, machineID string, a client.Action) error {
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO actions (machine_id, body) VALUES (?, ?)`), machineID, jsonText(a)); err != nil {
		return fmt.Errorf("record %s on %s: %w", a.Action, machineID, err)
	}
	return nil
}
func (s *sqlStore) Actions(ctx context.Context, machineID string, limit int) ([]client.Action, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT body FROM actions WHERE machine_id = ? ORDER BY id DESC LIMIT ?`), machineID, limit)
	if err != nil {
		return nil, fmt.Errorf("read actions of %s: %w", machineID, err)
	}
	defer rows.Close()
	out := []client.Action{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("read actions of %s: %w", machineID, err)
		}
		var a client.Action
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("decode action of %s: %w", machineID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
func (s *sqlStore) TaskRuns(ctx context.Context, poolID string, since time.Time) ([]TaskRun, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT pool_id, machine_id, task_id, run_id, started, finished FROM task_runs WHERE pool_id = ? AND finished >= ? ORDER BY finished`), poolID, ms(since))
	if err != nil {
		return nil, fmt.Errorf("read task runs of %s: %w", poolID, err)
	}
	defer rows.Close()
	var out []TaskRun
	for rows.Next() {
		var r TaskRun
		var st, fin int64
		if err := rows.Scan(&r.PoolID, &r.MachineID, &r.TaskID, &r.RunID, &st, &fin); err != nil {
			return nil, fmt.Errorf("read task runs of %s: %w", poolID, err)
		}
		r.Started, r.Finished = fromMS(st), fromMS(fin)
		out = append(out, r)
	}
	return out, rows.Err()
}
