package schedulerdb

// Claiming, as a 0.8.2 master does it (docs/bridge.md, "SchedulerDB", Claim),
// made safe for several claimers at once:
//
//	candidates := claimable requests of the builders, best first
//	for each candidate:
//	    lock builder's build numbers
//	    UPDATE claim columns WHERE they still hold what we read   (compare and swap)
//	    0 rows: someone else won it -> next candidate
//	    1 row:  insert builds(number = last + 1, brid, start_time = now) -> done
//
// Claim and builds row are one transaction, so a request is never left
// claimed without its build.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StaleClaim is the age after which a master may take over another's claim
// (RECLAIM_INTERVAL in 0.8.2's builder.py).
const StaleClaim = time.Hour

// ReclaimEvery is how often a master refreshes the claims of running builds.
const ReclaimEvery = 10 * time.Minute

// claimCandidates bounds how many candidates one Claim reads at a time.
const claimCandidates = 16

// Claimed is a request a master has just claimed and the build it started.
type Claimed struct {
	Request BuildRequest
	Build   Build
}

func (db *DB) staleBefore() int64 { return db.epoch() - int64(StaleClaim/time.Second) }

// Claim claims the best claimable request among builders for master m and
// starts a build for it, or returns nil when there is none. Concurrent
// claimers, in this process or others, never get the same request.
func (db *DB) Claim(ctx context.Context, m Master, builders []string) (*Claimed, error) {
	if m.Name == "" || m.Incarnation == "" {
		return nil, errors.New("schedulerdb: claim: Master.Name and Master.Incarnation must be set (claimed_by_name, claimed_by_incarnation)")
	}
	if len(builders) == 0 {
		return nil, errors.New("schedulerdb: claim: builders is empty: name at least one builder")
	}
	// A lost race only means another claimer took that request; read the
	// candidates again until one is won or none is left.
	for {
		cands, err := db.claimCandidates(ctx, m, builders)
		if err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			return nil, nil
		}
		for _, c := range cands {
			got, err := db.claimOne(ctx, m, c)
			if err != nil {
				return nil, err
			}
			if got != nil {
				return got, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

func (db *DB) claimCandidates(ctx context.Context, m Master, builders []string) ([]BuildRequest, error) {
	var out []BuildRequest
	args := append(stringArgs(builders), db.staleBefore(), m.Name, m.Incarnation, claimCandidates)
	err := db.retry(ctx, func() error {
		out = out[:0]
		rows, err := db.sql.QueryContext(ctx, "SELECT "+buildRequestColumns+
			" FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid WHERE br.buildername IN ("+
			placeholders(len(builders))+") AND "+claimableWhere+" "+claimOrder+" LIMIT ?", args...)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			r, err := scanBuildRequest(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: read claimable requests: %w", err)
	}
	return out, nil
}

// claimOne tries to claim c as it was read; nil means another claimer got
// there first.
func (db *DB) claimOne(ctx context.Context, m Master, c BuildRequest) (*Claimed, error) {
	var out *Claimed
	err := db.withTx(ctx, "buildnum:"+c.BuilderName, func(q querier) error {
		out = nil
		now := db.epoch()
		res, err := q.ExecContext(ctx, `UPDATE buildrequests
			SET claimed_at = ?, claimed_by_name = ?, claimed_by_incarnation = ?
			WHERE id = ? AND complete = 0 AND claimed_at = ?
			AND COALESCE(claimed_by_name, '') = ? AND COALESCE(claimed_by_incarnation, '') = ?`,
			now, m.Name, m.Incarnation, c.ID, c.ClaimedAt, c.ClaimedByName, c.ClaimedByIncarnation)
		if err != nil {
			return fmt.Errorf("claim buildrequest %d: %w", c.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		var number int
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(b.number), -1) + 1
			FROM builds b JOIN buildrequests br ON br.id = b.brid WHERE br.buildername = ?`,
			c.BuilderName).Scan(&number); err != nil {
			return fmt.Errorf("next build number of %s: %w", c.BuilderName, err)
		}
		res, err = q.ExecContext(ctx, "INSERT INTO builds (number, brid, start_time) VALUES (?, ?, ?)", number, c.ID, now)
		if err != nil {
			return fmt.Errorf("insert build of buildrequest %d: %w", c.ID, err)
		}
		buildID, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("build id: %w", err)
		}
		r := c
		r.ClaimedAt, r.ClaimedByName, r.ClaimedByIncarnation = now, m.Name, m.Incarnation
		out = &Claimed{Request: r, Build: Build{ID: buildID, Number: number, BRID: c.ID, StartTime: now}}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: %w", err)
	}
	return out, nil
}

// Reclaim refreshes claimed_at on those of brids that master m still holds
// and that are not complete, as a master does every ReclaimEvery for running
// builds, and returns the ones it still holds. A brid missing from the
// answer was completed (for example cancelled) or taken over.
func (db *DB) Reclaim(ctx context.Context, m Master, brids []int64) ([]int64, error) {
	if len(brids) == 0 {
		return nil, nil
	}
	var held []int64
	err := db.withTx(ctx, "", func(q querier) error {
		held = held[:0]
		args := append([]any{db.epoch()}, int64Args(brids)...)
		args = append(args, m.Name, m.Incarnation)
		if _, err := q.ExecContext(ctx, "UPDATE buildrequests SET claimed_at = ? WHERE id IN ("+placeholders(len(brids))+
			") AND complete = 0 AND claimed_by_name = ? AND claimed_by_incarnation = ?", args...); err != nil {
			return err
		}
		// Read back rather than trust rows affected: MySQL counts a row whose
		// claimed_at was already this second as unchanged.
		rows, err := q.QueryContext(ctx, "SELECT id FROM buildrequests WHERE id IN ("+placeholders(len(brids))+
			") AND complete = 0 AND claimed_by_name = ? AND claimed_by_incarnation = ? ORDER BY id",
			append(int64Args(brids), m.Name, m.Incarnation)...)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			held = append(held, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: reclaim %v: %w", brids, err)
	}
	return held, nil
}
