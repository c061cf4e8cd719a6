package schedulerdb

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// forUpdate is the locking-read suffix: MySQL needs it to read the latest
// committed rows inside a transaction; SQLite's BEGIN IMMEDIATE already
// excludes every other writer.
func (db *DB) forUpdate() string {
	if db.dialect == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// Complete finishes the builds of those of brids that master m holds, as a
// 0.8.2 master does when a build ends (docs/bridge.md, "SchedulerDB",
// Complete): builds get their
// finish_time; a RETRY puts the request back unclaimed (the same brid runs
// again); any other result completes the request and, once all its requests
// are complete, the buildset (FAILURE if any result is neither SUCCESS nor
// WARNINGS). It returns the brids it acted on; requests already complete or
// held by another master are left alone, which makes a repeated call harmless.
func (db *DB) Complete(ctx context.Context, m Master, brids []int64, result Result) ([]int64, error) {
	if !result.Known() {
		return nil, fmt.Errorf("schedulerdb: complete: result %d is not a Buildbot result code (0 SUCCESS to 6 CANCELLED)", int(result))
	}
	if len(brids) == 0 {
		return nil, errors.New("schedulerdb: complete: brids is empty: name the requests the build satisfied")
	}
	var done []int64
	err := db.withTx(ctx, "", func(q querier) error {
		done = done[:0]
		now := db.epoch()
		held := map[int64]int64{} // brid -> buildsetid
		rows, err := q.QueryContext(ctx, "SELECT id, buildsetid FROM buildrequests WHERE id IN ("+placeholders(len(brids))+
			") AND complete = 0 AND claimed_by_name = ? AND claimed_by_incarnation = ? ORDER BY id"+db.forUpdate(),
			append(int64Args(brids), m.Name, m.Incarnation)...)
		if err != nil {
			return fmt.Errorf("read held requests: %w", err)
		}
		for rows.Next() {
			var id, bsid int64
			if err := rows.Scan(&id, &bsid); err != nil {
				_ = rows.Close()
				return err
			}
			held[id] = bsid
			done = append(done, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(done) == 0 {
			return nil
		}
		ids := int64Args(done)
		if _, err := q.ExecContext(ctx, "UPDATE builds SET finish_time = ? WHERE brid IN ("+placeholders(len(done))+
			") AND finish_time IS NULL", append([]any{now}, ids...)...); err != nil {
			return fmt.Errorf("finish builds: %w", err)
		}
		if result == Retry {
			_, err := q.ExecContext(ctx, "UPDATE buildrequests SET claimed_at = 0, claimed_by_name = NULL, claimed_by_incarnation = NULL WHERE id IN ("+
				placeholders(len(done))+")", ids...)
			if err != nil {
				return fmt.Errorf("put requests back for retry: %w", err)
			}
			return nil
		}
		if _, err := q.ExecContext(ctx, "UPDATE buildrequests SET complete = 1, results = ?, complete_at = ? WHERE id IN ("+
			placeholders(len(done))+")", append([]any{int(result), now}, ids...)...); err != nil {
			return fmt.Errorf("complete requests: %w", err)
		}
		return db.checkBuildsets(ctx, q, held, now)
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: complete %v with %s: %w", brids, result, err)
	}
	return done, nil
}

// checkBuildsets completes each buildset whose requests are now all complete
// (0.8.2's _check_buildset).
func (db *DB) checkBuildsets(ctx context.Context, q querier, held map[int64]int64, now int64) error {
	var sets []int64
	seen := map[int64]bool{}
	for _, bsid := range held {
		if !seen[bsid] {
			seen[bsid] = true
			sets = append(sets, bsid)
		}
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i] < sets[j] })
	for _, bsid := range sets {
		var open, bad int
		if err := q.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN complete = 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN results IS NULL OR results NOT IN (0, 1) THEN 1 ELSE 0 END), 0)
			FROM buildrequests WHERE buildsetid = ?`+db.forUpdate(), bsid).Scan(&open, &bad); err != nil {
			return fmt.Errorf("check buildset %d: %w", bsid, err)
		}
		if open > 0 {
			continue
		}
		result := Success
		if bad > 0 {
			result = Failure
		}
		if _, err := q.ExecContext(ctx, "UPDATE buildsets SET complete = 1, complete_at = ?, results = ? WHERE id = ? AND complete = 0",
			now, int(result), bsid); err != nil {
			return fmt.Errorf("complete buildset %d: %w", bsid, err)
		}
	}
	return nil
}
