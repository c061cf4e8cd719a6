package schedulerdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

const buildRequestColumns = `br.id, br.buildsetid, br.buildername, br.priority, br.claimed_at, br.claimed_by_name,
	br.claimed_by_incarnation, br.complete, br.results, br.submitted_at, br.complete_at`

type scanner interface{ Scan(dest ...any) error }

func scanBuildRequest(s scanner) (BuildRequest, error) {
	var (
		r                   BuildRequest
		claimedAt, complete sql.NullInt64
		name, inc           sql.NullString
		results, completeAt sql.NullInt64
	)
	if err := s.Scan(&r.ID, &r.BuildsetID, &r.BuilderName, &r.Priority, &claimedAt, &name, &inc,
		&complete, &results, &r.SubmittedAt, &completeAt); err != nil {
		return r, err
	}
	r.ClaimedAt = claimedAt.Int64
	r.ClaimedByName, r.ClaimedByIncarnation = name.String, inc.String
	r.Complete = complete.Int64 != 0
	r.Results = nullResult(results)
	r.CompleteAt = nullInt(completeAt)
	return r, nil
}

func nullResult(v sql.NullInt64) *Result {
	if !v.Valid {
		return nil
	}
	r := Result(v.Int64)
	return &r
}

func nullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// BuildRequest returns the build request brid, or ErrNotFound.
func (db *DB) BuildRequest(ctx context.Context, brid int64) (BuildRequest, error) {
	var r BuildRequest
	err := db.retry(ctx, func() (err error) {
		r, err = scanBuildRequest(db.sql.QueryRowContext(ctx,
			"SELECT "+buildRequestColumns+" FROM buildrequests br WHERE br.id = ?", brid))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("schedulerdb: buildrequest %d: %w", brid, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("schedulerdb: read buildrequest %d: %w", brid, err)
	}
	return r, nil
}

// Buildset returns the buildset id, or ErrNotFound.
func (db *DB) Buildset(ctx context.Context, id int64) (Buildset, error) {
	var (
		b                   Buildset
		ext, reason         sql.NullString
		completeAt, results sql.NullInt64
		complete            int64
	)
	err := db.retry(ctx, func() error {
		return db.sql.QueryRowContext(ctx, `SELECT id, external_idstring, reason, sourcestampid, submitted_at,
			complete, complete_at, results FROM buildsets WHERE id = ?`, id).
			Scan(&b.ID, &ext, &reason, &b.SourcestampID, &b.SubmittedAt, &complete, &completeAt, &results)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("schedulerdb: buildset %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("schedulerdb: read buildset %d: %w", id, err)
	}
	b.ExternalIDString, b.Reason = ext.String, reason.String
	b.Complete = complete != 0
	b.CompleteAt, b.Results = nullInt(completeAt), nullResult(results)
	return b, nil
}

// BuildsetForRequest returns the buildset of build request brid, or ErrNotFound.
func (db *DB) BuildsetForRequest(ctx context.Context, brid int64) (Buildset, error) {
	r, err := db.BuildRequest(ctx, brid)
	if err != nil {
		return Buildset{}, err
	}
	return db.Buildset(ctx, r.BuildsetID)
}

// RawBuildsetProperties returns the stored property_value text of each
// property of a buildset, by name.
func (db *DB) RawBuildsetProperties(ctx context.Context, buildsetID int64) (map[string]string, error) {
	out := map[string]string{}
	err := db.retry(ctx, func() error {
		clear(out)
		rows, err := db.sql.QueryContext(ctx,
			"SELECT property_name, property_value FROM buildset_properties WHERE buildsetid = ?", buildsetID)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value); err != nil {
				return err
			}
			out[name] = value
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: read properties of buildset %d: %w", buildsetID, err)
	}
	return out, nil
}

// BuildsetProperties returns the properties of a buildset decoded from their
// [value, source] JSON.
func (db *DB) BuildsetProperties(ctx context.Context, buildsetID int64) (map[string]Property, error) {
	raw, err := db.RawBuildsetProperties(ctx, buildsetID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Property, len(raw))
	for name, text := range raw {
		var pair []json.RawMessage
		if err := json.Unmarshal([]byte(text), &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("schedulerdb: buildset %d property %s: %q is not a [value, source] pair", buildsetID, name, text)
		}
		var p Property
		p.Value = pair[0]
		if err := json.Unmarshal(pair[1], &p.Source); err != nil {
			return nil, fmt.Errorf("schedulerdb: buildset %d property %s: source is not a string: %w", buildsetID, name, err)
		}
		out[name] = p
	}
	return out, nil
}

// Builds returns the builds of build request brid, oldest first (a RETRY
// leaves one per attempt).
func (db *DB) Builds(ctx context.Context, brid int64) ([]Build, error) {
	var out []Build
	err := db.retry(ctx, func() error {
		out = out[:0]
		rows, err := db.sql.QueryContext(ctx,
			"SELECT id, number, brid, start_time, finish_time FROM builds WHERE brid = ? ORDER BY id", brid)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			b, err := scanBuild(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: read builds of buildrequest %d: %w", brid, err)
	}
	return out, nil
}

func scanBuild(s scanner) (Build, error) {
	var (
		b      Build
		finish sql.NullInt64
	)
	if err := s.Scan(&b.ID, &b.Number, &b.BRID, &b.StartTime, &finish); err != nil {
		return b, err
	}
	b.FinishTime = nullInt(finish)
	return b, nil
}

// Build returns the build id, or ErrNotFound.
func (db *DB) Build(ctx context.Context, id int64) (Build, error) {
	var b Build
	err := db.retry(ctx, func() (err error) {
		b, err = scanBuild(db.sql.QueryRowContext(ctx,
			"SELECT id, number, brid, start_time, finish_time FROM builds WHERE id = ?", id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("schedulerdb: build %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("schedulerdb: read build %d: %w", id, err)
	}
	return b, nil
}

// SourcestampForRequest returns the sourcestamp of build request brid
// through its buildset, or ErrNotFound when any link is missing.
func (db *DB) SourcestampForRequest(ctx context.Context, brid int64) (Sourcestamp, error) {
	var (
		s                Sourcestamp
		branch, revision sql.NullString
	)
	err := db.retry(ctx, func() error {
		return db.sql.QueryRowContext(ctx, `SELECT ss.id, ss.branch, ss.revision, ss.repository, ss.project
			FROM buildrequests br
			JOIN buildsets bs ON bs.id = br.buildsetid
			JOIN sourcestamps ss ON ss.id = bs.sourcestampid
			WHERE br.id = ?`, brid).Scan(&s.ID, &branch, &revision, &s.Repository, &s.Project)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("schedulerdb: sourcestamp of buildrequest %d: %w", brid, ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("schedulerdb: read sourcestamp of buildrequest %d: %w", brid, err)
	}
	s.Branch, s.Revision = branch.String, revision.String
	return s, nil
}

// CancelledBeforeStart returns those of brids that were cancelled in
// Buildbot before any master claimed them (complete=1, claimed_at=0), which
// Buildbot announces on no Pulse exchange.
func (db *DB) CancelledBeforeStart(ctx context.Context, brids []int64) ([]int64, error) {
	var out []int64
	for len(brids) > 0 {
		chunk := brids[:min(len(brids), 500)]
		brids = brids[len(chunk):]
		err := db.retry(ctx, func() error {
			rows, err := db.sql.QueryContext(ctx, "SELECT id FROM buildrequests WHERE id IN ("+placeholders(len(chunk))+
				") AND complete = 1 AND claimed_at = 0 ORDER BY id", int64Args(chunk)...)
			if err != nil {
				return err
			}
			defer func() { _ = rows.Close() }()
			var got []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				got = append(got, id)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			out = append(out, got...)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("schedulerdb: find requests cancelled before start: %w", err)
		}
	}
	return out, nil
}

// claimableWhere selects the requests a master may claim (docs/bridge.md,
// "SchedulerDB", Claim):
// incomplete, and unclaimed, stale (claimed over an hour ago), or claimed by
// an earlier incarnation of the same master. Arguments: staleBefore, name,
// incarnation.
const claimableWhere = `br.complete = 0 AND (br.claimed_at < ? OR (br.claimed_by_name = ? AND br.claimed_by_incarnation <> ?))`

// claimOrder is the master's order: priority first, then the oldest buildset.
const claimOrder = `ORDER BY br.priority DESC, bs.submitted_at ASC, br.id ASC`

// Pending returns up to limit requests for builder that a master m could
// claim now, in the order it would claim them.
func (db *DB) Pending(ctx context.Context, builder string, m Master, limit int) ([]BuildRequest, error) {
	var out []BuildRequest
	err := db.retry(ctx, func() error {
		out = out[:0]
		rows, err := db.sql.QueryContext(ctx, "SELECT "+buildRequestColumns+
			" FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid WHERE br.buildername = ? AND "+
			claimableWhere+" "+claimOrder+" LIMIT ?", builder, db.staleBefore(), m.Name, m.Incarnation, limit)
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
		return nil, fmt.Errorf("schedulerdb: list pending requests of %s: %w", builder, err)
	}
	return out, nil
}

// PendingByBuilder counts, per builder name, the requests waiting for a
// master: incomplete and unclaimed or with a stale claim.
func (db *DB) PendingByBuilder(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := db.retry(ctx, func() error {
		clear(out)
		rows, err := db.sql.QueryContext(ctx, `SELECT buildername, COUNT(*) FROM buildrequests
			WHERE complete = 0 AND claimed_at < ? GROUP BY buildername`, db.staleBefore())
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var name string
			var n int
			if err := rows.Scan(&name, &n); err != nil {
				return err
			}
			out[name] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: count pending requests: %w", err)
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func stringArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
