package provisioner

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// sqlStore is the Store on database/sql, shared by SQLite and PostgreSQL;
// the dialect carries the differences.
type sqlStore struct {
	db *sql.DB
	d  dialect
	// leader takes the assigner lock (advisory lock or in-process).
	leader func(ctx context.Context) (Leadership, bool, error)

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

// prepared returns a cached prepared statement for the hot paths
// (heartbeats, directives, token checks), sparing SQLite a parse per call.
func (s *sqlStore) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[query] = st
	return st, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// isUniqueViolation recognises both databases' duplicate-key errors without
// importing driver-specific types into every call site.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

func (s *sqlStore) PutPool(ctx context.Context, p client.Pool) error {
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		return fmt.Errorf("encode pool %s: %w", p.PoolID, err)
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO pools (pool_id, spec, created, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (pool_id) DO UPDATE SET spec = excluded.spec, updated = excluded.updated`),
		p.PoolID, string(spec), ms(p.Created), ms(p.Updated))
	if err != nil {
		return fmt.Errorf("store pool %s: %w", p.PoolID, err)
	}
	return nil
}

func scanPool(sc interface{ Scan(...any) error }) (client.Pool, error) {
	var p client.Pool
	var spec string
	var created, updated int64
	if err := sc.Scan(&p.PoolID, &spec, &created, &updated); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(spec), &p.Spec); err != nil {
		return p, fmt.Errorf("decode stored pool %s: %w", p.PoolID, err)
	}
	p.Created, p.Updated = fromMS(created), fromMS(updated)
	return p, nil
}

func (s *sqlStore) GetPool(ctx context.Context, poolID string) (client.Pool, error) {
	p, err := scanPool(s.db.QueryRowContext(ctx, s.q(`SELECT pool_id, spec, created, updated FROM pools WHERE pool_id = ?`), poolID))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("pool %s: %w", poolID, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read pool %s: %w", poolID, err)
	}
	return p, nil
}

func (s *sqlStore) ListPools(ctx context.Context) ([]client.Pool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT pool_id, spec, created, updated FROM pools ORDER BY pool_id`)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	defer rows.Close()
	out := []client.Pool{}
	for rows.Next() {
		p, err := scanPool(rows)
		if err != nil {
			return nil, fmt.Errorf("list pools: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeletePool(ctx context.Context, poolID string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM pools WHERE pool_id = ?`), poolID)
	if err != nil {
		return fmt.Errorf("delete pool %s: %w", poolID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pool %s: %w", poolID, ErrNotFound)
	}
	return nil
}

const machineColumns = `machine_id, token_hash, identity, pool_id, moving_to, facts, state, current_task_id, current_run_id,
	task_started, health, counters, registered, last_heartbeat, last_moved, quarantined_until, quarantine_reason, draining, creds_expire,
	current_kind, current_builder, current_build_number`

func scanMachine(sc interface{ Scan(...any) error }) (*MachineRecord, error) {
	m := &MachineRecord{}
	var identity sql.NullString
	var facts, health, counters, taskID, kind, builder string
	var runID, buildNumber int
	var taskStarted, lastHB, lastMoved, qUntil, credsExpire sql.NullInt64
	var registered int64
	var draining int
	err := sc.Scan(&m.MachineID, &m.TokenHash, &identity, &m.PoolID, &m.MovingTo, &facts, &m.State, &taskID, &runID,
		&taskStarted, &health, &counters, &registered, &lastHB, &lastMoved, &qUntil, &m.QuarantineReason, &draining, &credsExpire,
		&kind, &builder, &buildNumber)
	if err != nil {
		return nil, err
	}
	m.Identity = identity.String
	if err := json.Unmarshal([]byte(facts), &m.Facts); err != nil {
		return nil, fmt.Errorf("decode facts of %s: %w", m.MachineID, err)
	}
	if err := json.Unmarshal([]byte(health), &m.Health); err != nil {
		return nil, fmt.Errorf("decode health of %s: %w", m.MachineID, err)
	}
	if err := json.Unmarshal([]byte(counters), &m.Counters); err != nil {
		return nil, fmt.Errorf("decode counters of %s: %w", m.MachineID, err)
	}
	if taskID != "" {
		m.CurrentTask = &client.TaskRef{TaskID: taskID, RunID: runID, Kind: kind, Builder: builder, BuildNumber: buildNumber}
		if kind == "" {
			m.CurrentTask.Kind = client.KindTaskcluster
		}
	}
	m.TaskStarted = timePtr(taskStarted)
	m.Registered = fromMS(registered)
	m.LastHeartbeat = timePtr(lastHB)
	m.LastMoved = timePtr(lastMoved)
	m.QuarantinedUntil = timePtr(qUntil)
	m.Draining = draining != 0
	m.CredentialsExpire = timePtr(credsExpire)
	return m, nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain data types reach here; a failure is a programming error.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return string(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *sqlStore) InsertMachine(ctx context.Context, m *MachineRecord) error {
	health := m.Health
	if health == nil {
		health = []client.HealthResult{}
	}
	counters := m.Counters
	if counters == nil {
		counters = map[string]int64{}
	}
	state := m.State
	if state == "" {
		state = client.StateStarting
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO machines (`+machineColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, NULL, ?, ?, ?, NULL, ?, ?, ?, ?, ?, '', '', 0)`),
		m.MachineID, m.TokenHash, nullString(m.Identity), m.PoolID, m.MovingTo, jsonText(m.Facts), state,
		jsonText(health), jsonText(counters), ms(m.Registered), nullMS(m.LastMoved), nullMS(m.QuarantinedUntil), m.QuarantineReason, boolInt(m.Draining), nullMS(m.CredentialsExpire))
	if isUniqueViolation(err) {
		return fmt.Errorf("machine %s: %w", m.MachineID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert machine %s: %w", m.MachineID, err)
	}
	return nil
}

func (s *sqlStore) getMachineWhere(ctx context.Context, where string, arg any, what string) (*MachineRecord, error) {
	m, err := scanMachine(s.db.QueryRowContext(ctx, s.q(`SELECT `+machineColumns+` FROM machines WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("machine %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read machine %s: %w", what, err)
	}
	return m, nil
}

func (s *sqlStore) GetMachine(ctx context.Context, machineID string) (*MachineRecord, error) {
	return s.getMachineWhere(ctx, `machine_id = ?`, machineID, machineID)
}

func (s *sqlStore) MachineByIdentity(ctx context.Context, identity string) (*MachineRecord, error) {
	return s.getMachineWhere(ctx, `identity = ?`, identity, "with identity "+identity)
}

func (s *sqlStore) MachineIDByTokenHash(ctx context.Context, hash []byte) (string, error) {
	var id string
	st, err := s.prepared(ctx, `SELECT machine_id FROM machines WHERE token_hash = ?`)
	if err != nil {
		return "", err
	}
	err = st.QueryRowContext(ctx, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("machine token: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up machine token: %w", err)
	}
	return id, nil
}

func (s *sqlStore) ListMachines(ctx context.Context) ([]*MachineRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+machineColumns+` FROM machines ORDER BY machine_id`)
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	defer rows.Close()
	var out []*MachineRecord
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, fmt.Errorf("list machines: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	return out, nil
}

func (s *sqlStore) SaveMachine(ctx context.Context, m *MachineRecord) error {
	res, err := s.db.ExecContext(ctx, s.q(saveMachineSQL), saveMachineArgs(m)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("machine %s: %w", m.MachineID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("save machine %s: %w", m.MachineID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("machine %s: %w", m.MachineID, ErrNotFound)
	}
	return nil
}

const saveMachineSQL = `UPDATE machines SET token_hash = ?, identity = ?, pool_id = ?, moving_to = ?, facts = ?,
	last_moved = ?, quarantined_until = ?, quarantine_reason = ?, draining = ?, creds_expire = ? WHERE machine_id = ?`

func saveMachineArgs(m *MachineRecord) []any {
	return []any{m.TokenHash, nullString(m.Identity), m.PoolID, m.MovingTo, jsonText(m.Facts),
		nullMS(m.LastMoved), nullMS(m.QuarantinedUntil), m.QuarantineReason, boolInt(m.Draining), nullMS(m.CredentialsExpire), m.MachineID}
}

func (s *sqlStore) ApplyMoves(ctx context.Context, writes []MoveWrite) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("apply moves: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	prep := func(q string) (*sql.Stmt, error) {
		st, err := tx.PrepareContext(ctx, s.q(q))
		if err != nil {
			return nil, fmt.Errorf("apply moves: prepare: %w", err)
		}
		return st, nil
	}
	save, err := prep(saveMachineSQL)
	if err != nil {
		return err
	}
	defer save.Close()
	dir, err := prep(`INSERT INTO directives (machine_id, body, created) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer dir.Close()
	act, err := prep(`INSERT INTO actions (machine_id, body) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer act.Close()
	for _, w := range writes {
		id := w.Machine.MachineID
		res, err := save.ExecContext(ctx, saveMachineArgs(w.Machine)...)
		if err != nil {
			return fmt.Errorf("apply moves: save machine %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("apply moves: machine %s: %w", id, ErrNotFound)
		}
		d := w.Directive
		d.ID = 0
		if _, err := dir.ExecContext(ctx, id, jsonText(d), ms(d.Created)); err != nil {
			return fmt.Errorf("apply moves: queue %s for %s: %w", d.Kind, id, err)
		}
		if _, err := act.ExecContext(ctx, id, jsonText(w.Action)); err != nil {
			return fmt.Errorf("apply moves: record %s on %s: %w", w.Action.Action, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply moves: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) Shared() bool { return s.d.name == "postgres" }

func (s *sqlStore) TryLeadership(ctx context.Context) (Leadership, bool, error) {
	return s.leader(ctx)
}

func (s *sqlStore) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}
