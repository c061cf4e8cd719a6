package store

// Reflector row leases. Every instance runs the reflector; each pass it
// leases a batch of rows and works only on those, so that N instances do
// not reclaim one task N times:
//
//	free:   lease_owner IS NULL, or lease_until < now (holder died or is late)
//	leased: lease_owner = me, lease_until = now + ttl
//
// AcquireLeases takes free rows and renews the caller's own in one step.
// On PostgreSQL and on MariaDB ≥ 10.6 / MySQL ≥ 8 the candidates are read
// with SELECT … FOR UPDATE SKIP LOCKED, so concurrent acquirers pass over
// each other's rows instead of queueing; elsewhere (SQLite, older MySQL) a
// conditional UPDATE per row decides, and the winners are read back.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// leaseFree selects rows the owner may take: free, expired, or its own.
// Arguments: now, owner.
const leaseFree = `(lease_owner IS NULL OR lease_until IS NULL OR lease_until < ? OR lease_owner = ?)`

// AcquireLeases leases up to limit rows to owner for ttl, taking free or
// expired rows and renewing the owner's own, oldest rows first, and returns
// them in the list order (takenUntil descending, not-yet-started rows last).
// Two owners never hold a row at the same time while their clocks agree.
func (s *Store) AcquireLeases(ctx context.Context, owner string, ttl time.Duration, limit int) ([]Task, error) {
	switch {
	case owner == "" || len(owner) > 128:
		return nil, fmt.Errorf("store: acquire leases: owner %q must be 1 to 128 characters: use the instance id", owner)
	case ttl < time.Second:
		return nil, fmt.Errorf("store: acquire leases: ttl %s is under a second: use at least the reflector interval", ttl)
	case limit <= 0:
		return nil, fmt.Errorf("store: acquire leases: limit %d must be positive", limit)
	}
	var out []Task
	err := s.withTx(ctx, func(q querier) error {
		now := s.epoch()
		until := now + int64(ttl/time.Second)
		lock := ""
		if s.skipLocked {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		// Candidates in primary-key order: InnoDB locks every row it
		// examines, so an order that needs a sort would lock the whole table
		// and leave nothing for the other instances to take.
		rows, err := q.QueryContext(ctx, s.q("SELECT id FROM tasks WHERE "+leaseFree+" ORDER BY id LIMIT ?"+lock), now, owner, limit)
		if err != nil {
			return fmt.Errorf("select free rows: %w", err)
		}
		var ids []any
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(ids) == 0 {
			out = nil
			return nil
		}
		// The lease condition is repeated in the UPDATE: without SKIP
		// LOCKED another owner may have taken a row since it was read.
		args := append([]any{owner, until, now, owner}, ids...)
		if _, err := q.ExecContext(ctx, s.q("UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE "+leaseFree+
			" AND id IN ("+placeholders(len(ids))+")"), args...); err != nil {
			return fmt.Errorf("take leases: %w", err)
		}
		// Read back rather than count rows affected: MySQL does not count a
		// renewal that leaves lease_until unchanged within the same second.
		out, err = s.queryTasks(ctx, q, "SELECT "+taskColumns+" FROM tasks WHERE lease_owner = ? AND lease_until = ? AND id IN ("+
			placeholders(len(ids))+")"+listOrder, append([]any{owner, until}, ids...)...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: acquire leases for %s: %w", owner, err)
	}
	return out, nil
}

// ReleaseLeases gives up owner's leases on the rows with the given ids (all
// of owner's rows when ids is empty), so another instance can take them at
// once rather than after the ttl.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, ids ...int64) (int64, error) {
	if owner == "" {
		return 0, errors.New("store: release leases: owner is empty: use the instance id that acquired them")
	}
	query := "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
	args := []any{owner}
	if len(ids) > 0 {
		query += " AND id IN (" + placeholders(len(ids)) + ")"
		for _, id := range ids {
			args = append(args, id)
		}
	}
	n, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store: release leases of %s: %w", owner, err)
	}
	return n, nil
}

func placeholders(n int) string {
	b := make([]byte, 0, 2*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}
