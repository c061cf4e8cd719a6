package bridge

// The bridge's own bookkeeping, in the bridge DB next to `tasks`:
//
//	bridge_builds       one row per (brid, build number): the run the build
//	                    stands for and whether its log_uploaded was handled,
//	                    so that a late duplicate of a started or log_uploaded
//	                    message never acts on a newer run of the task.
//	bridge_dead_letters messages parked after their retries ran out.
//
// The tables are created with CREATE TABLE IF NOT EXISTS at start, which any
// number of instances may run at once.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/bridge/store"
)

type ownTables struct {
	db      *sql.DB
	dialect store.Dialect
}

func openOwnTables(ctx context.Context, db *sql.DB, d store.Dialect) (*ownTables, error) {
	text := "TEXT"
	if d == store.MySQL {
		text = "MEDIUMTEXT"
	}
	t := &ownTables{db: db, dialect: d}
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS bridge_builds (brid BIGINT NOT NULL, number INT NOT NULL, run_id INT NOT NULL,
			resolved INT NOT NULL DEFAULT 0, lease_until BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (brid, number))`,
		`CREATE TABLE IF NOT EXISTS bridge_dead_letters (queue VARCHAR(190) NOT NULL, routing_key VARCHAR(255) NOT NULL,
			body ` + text + ` NOT NULL, error ` + text + ` NOT NULL, instance VARCHAR(128) NOT NULL, at BIGINT NOT NULL)`,
	} {
		if err := t.retry(ctx, func() error { _, err := db.ExecContext(ctx, ddl); return err }); err != nil {
			return nil, fmt.Errorf("bridge: create bookkeeping tables: %w", err)
		}
	}
	return t, nil
}

// retry repeats fn on errors a reconnect cures (a killed or dropped
// connection, a deadlock, a busy SQLite file).
func (t *ownTables) retry(ctx context.Context, fn func() error) error {
	delay := 20 * time.Millisecond
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if err = fn(); err == nil || !dbTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
	return err
}

// dbTransient is deliberately broad: these statements are all idempotent.
func dbTransient(err error) bool {
	s := strings.ToLower(err.Error())
	for _, w := range []string{"bad connection", "invalid connection", "broken pipe", "connection reset", "deadlock", "lock wait", "busy", "locked", "eof", "connection refused", "server has gone away", "lost connection", "killed", "interrupted"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func (t *ownTables) q(query string) string {
	if t.dialect != store.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (t *ownTables) insertIgnore() (string, string) {
	if t.dialect == store.MySQL {
		return "INSERT IGNORE", ""
	}
	return "INSERT", " ON CONFLICT DO NOTHING"
}

// buildRun records that build (brid, number) stands for runID unless a
// record exists already, and returns the record.
func (t *ownTables) buildRun(ctx context.Context, brid int64, number, runID int) (recordedRun int, resolved bool, err error) {
	ins, suffix := t.insertIgnore()
	err = t.retry(ctx, func() error {
		if _, err := t.db.ExecContext(ctx, t.q(ins+" INTO bridge_builds (brid, number, run_id, resolved) VALUES (?, ?, ?, 0)"+suffix), brid, number, runID); err != nil {
			return err
		}
		var r int
		if err := t.db.QueryRowContext(ctx, t.q("SELECT run_id, resolved FROM bridge_builds WHERE brid = ? AND number = ?"), brid, number).Scan(&recordedRun, &r); err != nil {
			return err
		}
		resolved = r != 0
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("bridge: record build %d of request %d: %w", number, brid, err)
	}
	return recordedRun, resolved, nil
}

// acquireBuild takes the right to handle build (brid, number)'s
// log_uploaded for ttl, so that two copies of the message handled at once
// on two instances do not both act; resolved reports that it was handled.
func (t *ownTables) acquireBuild(ctx context.Context, brid int64, number, runID int, ttl time.Duration) (ok, resolved bool, err error) {
	if _, resolved, err = t.buildRun(ctx, brid, number, runID); err != nil || resolved {
		return false, resolved, err
	}
	now := time.Now()
	err = t.retry(ctx, func() error {
		res, err := t.db.ExecContext(ctx, t.q("UPDATE bridge_builds SET lease_until = ? WHERE brid = ? AND number = ? AND resolved = 0 AND lease_until < ?"),
			now.Add(ttl).UnixMilli(), brid, number, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("bridge: take build %d of request %d: %w", number, brid, err)
	}
	return ok, false, nil
}

// releaseBuild gives up the right taken by acquireBuild.
func (t *ownTables) releaseBuild(ctx context.Context, brid int64, number int) {
	_ = t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q("UPDATE bridge_builds SET lease_until = 0 WHERE brid = ? AND number = ?"), brid, number)
		return err
	})
}

// setBuildRun records the run build (brid, number) stands for.
func (t *ownTables) setBuildRun(ctx context.Context, brid int64, number, runID int) error {
	err := t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q("UPDATE bridge_builds SET run_id = ? WHERE brid = ? AND number = ?"), runID, brid, number)
		return err
	})
	if err != nil {
		return fmt.Errorf("bridge: record run of build %d of request %d: %w", number, brid, err)
	}
	return nil
}

// markResolved records that build (brid, number)'s log_uploaded was handled.
func (t *ownTables) markResolved(ctx context.Context, brid int64, number int) error {
	err := t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q("UPDATE bridge_builds SET resolved = 1 WHERE brid = ? AND number = ?"), brid, number)
		return err
	})
	if err != nil {
		return fmt.Errorf("bridge: mark build %d of request %d resolved: %w", number, brid, err)
	}
	return nil
}

// deleteTaskRow deletes one row of the tasks table by its id, and only if
// it still has no build request: unlike store.DeleteByTask it never takes
// another row of the same task with it.
func (t *ownTables) deleteTaskRow(ctx context.Context, id int64) error {
	err := t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q("DELETE FROM tasks WHERE id = ? AND buildrequestId IS NULL"), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("bridge: delete task row %d: %w", id, err)
	}
	return nil
}

// DeadLetter is a parked message.
type DeadLetter struct {
	Queue      string `json:"queue"`
	RoutingKey string `json:"routingKey"`
	Body       string `json:"body"`
	Error      string `json:"error"`
	Instance   string `json:"instance"`
	At         int64  `json:"at"`
}

func (t *ownTables) addDeadLetter(ctx context.Context, d DeadLetter) error {
	return t.retry(ctx, func() error {
		_, err := t.db.ExecContext(ctx, t.q("INSERT INTO bridge_dead_letters (queue, routing_key, body, error, instance, at) VALUES (?, ?, ?, ?, ?, ?)"),
			d.Queue, d.RoutingKey, d.Body, d.Error, d.Instance, d.At)
		return err
	})
}

// deadLetters returns how many messages are parked and the latest few.
func (t *ownTables) deadLetters(ctx context.Context, latest int) (int64, []DeadLetter, error) {
	var n int64
	var out []DeadLetter
	err := t.retry(ctx, func() error {
		out = out[:0]
		if err := t.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM bridge_dead_letters").Scan(&n); err != nil {
			return err
		}
		rows, err := t.db.QueryContext(ctx, t.q("SELECT queue, routing_key, body, error, instance, at FROM bridge_dead_letters ORDER BY at DESC LIMIT ?"), latest)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var d DeadLetter
			if err := rows.Scan(&d.Queue, &d.RoutingKey, &d.Body, &d.Error, &d.Instance, &d.At); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, nil, fmt.Errorf("bridge: read dead letters: %w", err)
	}
	return n, out, nil
}
