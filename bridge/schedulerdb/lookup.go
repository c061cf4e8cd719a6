package schedulerdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RequestsForTask returns the build requests injected for a bridged task
// (their buildset's external_idstring is taskId:<taskId>), oldest first:
// one per scheduled run the bridge injected.
func (db *DB) RequestsForTask(ctx context.Context, taskID string) ([]BuildRequest, error) {
	var out []BuildRequest
	err := db.retry(ctx, func() error {
		out = out[:0]
		rows, err := db.sql.QueryContext(ctx, "SELECT "+buildRequestColumns+` FROM buildsets bs
			JOIN buildrequests br ON br.buildsetid = bs.id WHERE bs.external_idstring = ? ORDER BY br.id`, ExternalIDPrefix+taskID)
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
		return nil, fmt.Errorf("schedulerdb: read build requests of task %s: %w", taskID, err)
	}
	return out, nil
}

// BuildByNumber returns the build of builder numbered number and its
// build request, or ErrNotFound.
func (db *DB) BuildByNumber(ctx context.Context, builder string, number int) (Build, BuildRequest, error) {
	var b Build
	var r BuildRequest
	err := db.retry(ctx, func() error {
		row := db.sql.QueryRowContext(ctx, `SELECT b.id, b.number, b.brid, b.start_time, b.finish_time FROM builds b
			JOIN buildrequests br ON br.id = b.brid WHERE br.buildername = ? AND b.number = ? ORDER BY b.id DESC LIMIT 1`, builder, number)
		var err error
		b, err = scanBuild(row)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return b, r, fmt.Errorf("schedulerdb: build %s #%d: %w", builder, number, ErrNotFound)
	}
	if err != nil {
		return b, r, fmt.Errorf("schedulerdb: read build %s #%d: %w", builder, number, err)
	}
	r, err = db.BuildRequest(ctx, b.BRID)
	return b, r, err
}

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	err := db.retry(ctx, func() error { return db.sql.QueryRowContext(ctx, "SELECT 1").Scan(&one) })
	if err != nil {
		return fmt.Errorf("schedulerdb: ping: %w", err)
	}
	return nil
}
