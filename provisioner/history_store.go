package provisioner

// The history the dashboard draws (pool samples, machine state changes,
// a machine's runs) and the replicas' liveness rows, in the SQL store.

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PoolSample is one pool's figures at one history tick.
type PoolSample struct {
	PoolID string    `json:"-"`
	At     time.Time `json:"at"`
	// Pending is nil when the pool's source could not be asked.
	Pending     *int64 `json:"pending"`
	Assigned    int    `json:"assigned"`
	Busy        int    `json:"busy"`
	Idle        int    `json:"idle"`
	Quarantined int    `json:"quarantined"`
	Offline     int    `json:"offline"`
	Target      int    `json:"target"`
	Recommended int    `json:"recommended"`
}

// MachineState is a machine's state from At until the next change.
type MachineState struct {
	MachineID string
	At        time.Time
	State     string
	Detail    string
}

// ReplicaRecord is one provisioner replica as it last reported itself.
type ReplicaRecord struct {
	ReplicaID   string     `json:"replicaId"`
	Hostname    string     `json:"hostname"`
	Started     time.Time  `json:"started"`
	Seen        time.Time  `json:"seen"`
	Leading     bool       `json:"leading"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// HistoryStore keeps the dashboard's history. The SQL store implements
// it; a Store without it serves no history (the pages say so).
type HistoryStore interface {
	// AddHistory writes one tick's pool samples and machine state changes
	// in one transaction.
	AddHistory(ctx context.Context, samples []PoolSample, states []MachineState) error
	// PoolSamples returns a pool's samples with from <= at < to, oldest first.
	PoolSamples(ctx context.Context, poolID string, from, to time.Time) ([]PoolSample, error)
	// MachineStates returns a machine's state changes with from <= at < to
	// and the last change before from (the state the range starts in),
	// oldest first.
	MachineStates(ctx context.Context, machineID string, from, to time.Time) ([]MachineState, error)
	// LatestMachineStates returns every machine's latest recorded state.
	LatestMachineStates(ctx context.Context) (map[string]MachineState, error)
	// MachineRuns returns a machine's runs finished with from <= finished < to.
	MachineRuns(ctx context.Context, machineID string, from, to time.Time) ([]TaskRun, error)
	// MachineRunReports returns the runs a machine reported finished
	// with from <= finished < to.
	MachineRunReports(ctx context.Context, machineID string, from, to time.Time) ([]RunRecord, error)
	// TaskRunsOf returns the recorded runs of a task, on any machine.
	TaskRunsOf(ctx context.Context, taskID string) ([]TaskRun, error)
	// PruneHistory deletes samples and state changes older than before,
	// keeping each machine's last change before it (the state it was in
	// at before).
	PruneHistory(ctx context.Context, before time.Time) error
	// SaveReplica records a replica's liveness (and its last error).
	SaveReplica(ctx context.Context, r ReplicaRecord) error
	// Replicas lists the replicas seen since since.
	Replicas(ctx context.Context, since time.Time) ([]ReplicaRecord, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func (s *sqlStore) AddHistory(ctx context.Context, samples []PoolSample, states []MachineState) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record history: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, p := range samples {
		// A tick that repeats a timestamp (two leaders in one
		// millisecond) keeps the first sample.
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO pool_samples (pool_id, at, pending, assigned, busy, idle, quarantined, offline, target, recommended)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pool_id, at) DO NOTHING`),
			p.PoolID, ms(p.At), nullInt(p.Pending), p.Assigned, p.Busy, p.Idle, p.Quarantined, p.Offline, p.Target, p.Recommended); err != nil {
			return fmt.Errorf("record history: sample of pool %s: %w", p.PoolID, err)
		}
	}
	for _, m := range states {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO machine_states (machine_id, at, state, detail) VALUES (?, ?, ?, ?)`),
			m.MachineID, ms(m.At), m.State, m.Detail); err != nil {
			return fmt.Errorf("record history: state of machine %s: %w", m.MachineID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record history: commit: %w", err)
	}
	return nil
}

func (s *sqlStore) PoolSamples(ctx context.Context, poolID string, from, to time.Time) ([]PoolSample, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, pending, assigned, busy, idle, quarantined, offline, target, recommended
		FROM pool_samples WHERE pool_id = ? AND at >= ? AND at < ? ORDER BY at`), poolID, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read samples of pool %s: %w", poolID, err)
	}
	defer rows.Close()
	out := []PoolSample{}
	for rows.Next() {
		p := PoolSample{PoolID: poolID}
		var at int64
		var pending sql.NullInt64
		if err := rows.Scan(&at, &pending, &p.Assigned, &p.Busy, &p.Idle, &p.Quarantined, &p.Offline, &p.Target, &p.Recommended); err != nil {
			return nil, fmt.Errorf("read samples of pool %s: %w", poolID, err)
		}
		p.At = fromMS(at)
		if pending.Valid {
			v := pending.Int64
			p.Pending = &v
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read samples of pool %s: %w", poolID, err)
	}
	return out, nil
}

func scanStates(rows *sql.Rows, what string) ([]MachineState, error) {
	defer rows.Close()
	var out []MachineState
	for rows.Next() {
		var m MachineState
		var at int64
		if err := rows.Scan(&m.MachineID, &at, &m.State, &m.Detail); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		m.At = fromMS(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

func (s *sqlStore) MachineStates(ctx context.Context, machineID string, from, to time.Time) ([]MachineState, error) {
	what := "state history of machine " + machineID
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT machine_id, at, state, detail FROM machine_states
		WHERE machine_id = ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1`), machineID, ms(from))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	before, err := scanStates(rows, what)
	if err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT machine_id, at, state, detail FROM machine_states
		WHERE machine_id = ? AND at >= ? AND at < ? ORDER BY at, id`), machineID, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	in, err := scanStates(rows, what)
	if err != nil {
		return nil, err
	}
	return append(before, in...), nil
}

func (s *sqlStore) LatestMachineStates(ctx context.Context) (map[string]MachineState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT machine_id, at, state, detail FROM machine_states
		WHERE id IN (SELECT MAX(id) FROM machine_states GROUP BY machine_id)`)
	if err != nil {
		return nil, fmt.Errorf("read latest machine states: %w", err)
	}
	list, err := scanStates(rows, "latest machine states")
	if err != nil {
		return nil, err
	}
	out := make(map[string]MachineState, len(list))
	for _, m := range list {
		out[m.MachineID] = m
	}
	return out, nil
}

func (s *sqlStore) scanRuns(ctx context.Context, what, query string, args ...any) ([]TaskRun, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	out := []TaskRun{}
	for rows.Next() {
		var r TaskRun
		var st, fin int64
		if err := rows.Scan(&r.PoolID, &r.MachineID, &r.TaskID, &r.RunID, &st, &fin); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		r.Started, r.Finished = fromMS(st), fromMS(fin)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

func (s *sqlStore) MachineRuns(ctx context.Context, machineID string, from, to time.Time) ([]TaskRun, error) {
	return s.scanRuns(ctx, "runs of machine "+machineID, `SELECT pool_id, machine_id, task_id, run_id, started, finished FROM task_runs
		WHERE machine_id = ? AND finished >= ? AND finished < ? ORDER BY finished`, machineID, ms(from), ms(to))
}

func (s *sqlStore) TaskRunsOf(ctx context.Context, taskID string) ([]TaskRun, error) {
	return s.scanRuns(ctx, "runs of task "+taskID, `SELECT pool_id, machine_id, task_id, run_id, started, finished FROM task_runs
		WHERE task_id = ? ORDER BY started`, taskID)
}

func (s *sqlStore) PruneHistory(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM pool_samples WHERE at < ?`), ms(before)); err != nil {
		return fmt.Errorf("prune pool samples: %w", err)
	}
	// Each machine keeps its last change before the cut: it says what
	// state the machine was in from then on, however old it is.
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM machine_states WHERE at < ?
		AND id NOT IN (SELECT MAX(id) FROM machine_states WHERE at < ? GROUP BY machine_id)`), ms(before), ms(before)); err != nil {
		return fmt.Errorf("prune machine states: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM replicas WHERE seen < ?`), ms(before)); err != nil {
		return fmt.Errorf("prune replicas: %w", err)
	}
	return nil
}

func (s *sqlStore) SaveReplica(ctx context.Context, r ReplicaRecord) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO replicas (replica_id, hostname, started, seen, assigns, last_error, last_error_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (replica_id) DO UPDATE SET hostname = excluded.hostname, seen = excluded.seen, assigns = excluded.assigns,
		last_error = excluded.last_error, last_error_at = excluded.last_error_at`),
		r.ReplicaID, r.Hostname, ms(r.Started), ms(r.Seen), boolInt(r.Leading), r.LastError, nullMS(r.LastErrorAt))
	if err != nil {
		return fmt.Errorf("record replica %s: %w", r.ReplicaID, err)
	}
	return nil
}

func (s *sqlStore) Replicas(ctx context.Context, since time.Time) ([]ReplicaRecord, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT replica_id, hostname, started, seen, assigns, last_error, last_error_at FROM replicas
		WHERE seen >= ? ORDER BY replica_id`), ms(since))
	if err != nil {
		return nil, fmt.Errorf("read replicas: %w", err)
	}
	defer rows.Close()
	out := []ReplicaRecord{}
	for rows.Next() {
		var r ReplicaRecord
		var started, seen int64
		var leading int
		var errAt sql.NullInt64
		if err := rows.Scan(&r.ReplicaID, &r.Hostname, &started, &seen, &leading, &r.LastError, &errAt); err != nil {
			return nil, fmt.Errorf("read replicas: %w", err)
		}
		r.Started, r.Seen, r.Leading, r.LastErrorAt = fromMS(started), fromMS(seen), leading != 0, timePtr(errAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read replicas: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.d.name, err)
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("query %s database: %w", s.d.name, err)
	}
	return nil
}
