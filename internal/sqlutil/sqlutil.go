// Package sqlutil holds what labrunner's SQL stores share across SQLite,
// MariaDB/MySQL and PostgreSQL: which errors are worth running the work
// again for, a bounded retry with jittered backoff, and the SQLite settings
// several handles on one file need.
package sqlutil

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Retry bounds: attempts, first delay and longest delay.
const (
	retryAttempts = 8
	retryBase     = 20 * time.Millisecond
	retryMax      = 2 * time.Second
)

// Retry runs fn until it succeeds, fails with an error transient does not
// accept, the attempts run out or ctx ends. Everything fn does must be safe
// to run again after a rollback.
func Retry(ctx context.Context, transient func(error) bool, fn func() error) error {
	delay := retryBase
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !transient(err) || attempt == retryAttempts {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		delay = min(delay*2, retryMax)
	}
}

// Transient reports errors that go away when the work is done again:
// deadlocks, serialisation failures, lock waits, a busy SQLite file, a
// dropped connection.
func Transient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1205, 1213, 2006, 2013: // lock wait timeout, deadlock, server gone, lost connection
			return true
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", pe.Code == "57P01",
			strings.HasPrefix(pe.Code, "08"):
			return true
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

// UniqueViolation reports an insert refused by a UNIQUE constraint.
func UniqueViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == 2067 || se.Code() == 1555)
}

// MySQLDSN turns on client-side parameter interpolation for a MySQL or
// MariaDB DSN unless it sets interpolateParams itself: without it every
// statement with arguments costs a prepare, an execute and a close, three
// round trips instead of one. The driver still refuses to interpolate for
// the few character sets where that is unsafe.
func MySQLDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("MySQL DSN: %w: use user:password@tcp(host:3306)/database", err)
	}
	if !strings.Contains(dsn, "interpolateParams=") {
		cfg.InterpolateParams = true
	}
	return cfg.FormatDSN(), nil
}

// SQLiteDSN adds the pragmas a shared SQLite file needs: WAL so readers do
// not block the writer, and a busy timeout so writers queue for the write
// lock instead of failing at once.
func SQLiteDSN(dsn string) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	var add []string
	if !strings.Contains(dsn, "busy_timeout") {
		add = append(add, "_pragma=busy_timeout(10000)")
	}
	if !strings.Contains(dsn, "journal_mode") {
		add = append(add, "_pragma=journal_mode(WAL)")
	}
	if len(add) == 0 {
		return dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(add, "&")
}

// SQLiteImmediateTx runs fn on conn inside BEGIN IMMEDIATE … COMMIT, so the
// write lock is taken at once and read-then-write sequences cannot
// interleave with other handles on the file. fn uses conn itself. The busy
// timeout is set on the connection too, since it is per connection and a
// handle may have been opened without the DSN's pragma.
func SQLiteImmediateTx(ctx context.Context, conn *sql.Conn, fn func() error) error {
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 10000"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

// AutoIncrementRule tells whether the rows of one multi-row INSERT on a
// MySQL server get consecutive ids: under innodb_autoinc_lock_mode 0 or 1
// (MariaDB's default) they are LAST_INSERT_ID(), then that plus
// auto_increment_increment, and so on; under mode 2 they may interleave
// with other sessions' rows. The zero value asks the server the first time.
type AutoIncrementRule struct {
	mu          sync.Mutex
	known       bool
	consecutive bool
	step        int64
}

// Get returns the rule, asking db once. While the server cannot be asked it
// answers "not consecutive", which callers must handle by inserting row by
// row, and asks again next time.
func (r *AutoIncrementRule) Get(ctx context.Context, db *sql.DB) (consecutive bool, step int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.known {
		var mode, inc sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Scan(&mode, &inc); err != nil {
			return false, 0
		}
		r.known = true
		r.consecutive = mode.Valid && mode.Int64 != 2 && inc.Valid && inc.Int64 >= 1
		r.step = inc.Int64
	}
	return r.consecutive, r.step
}

// Set fixes the rule instead of asking the server (tests use it to take
// the row-by-row path).
func (r *AutoIncrementRule) Set(consecutive bool, step int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known, r.consecutive, r.step = true, consecutive, step
}
