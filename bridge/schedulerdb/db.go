package schedulerdb

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	// The two drivers a SchedulerDB can live on.
	_ "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"

	"github.com/labrunner/labrunner/internal/batch"
	"github.com/labrunner/labrunner/internal/sqlutil"
)

// Dialect names the SQL database a SchedulerDB lives on.
type Dialect string

// Supported dialects; the values are also the database/sql driver names.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// ErrNotFound is returned when a build request, buildset or build does not exist.
var ErrNotFound = errors.New("schedulerdb: not found")

// ParseDialect accepts "mysql", "mariadb" or "sqlite".
func ParseDialect(s string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mysql", "mariadb":
		return MySQL, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return "", fmt.Errorf("schedulerdb: dialect %q is not supported: use \"mysql\" (MySQL/MariaDB) or \"sqlite\"", s)
}

// DB is a SchedulerDB handle, safe for concurrent use by many goroutines and
// by several processes sharing the same database.
type DB struct {
	sql        *sql.DB
	dialect    Dialect
	now        func() time.Time
	injections *batch.Queue[*injectCall] // MySQL injections waiting for a batch
	autoInc    sqlutil.AutoIncrementRule // how MySQL numbers multi-row inserts
}

// Open connects to the SchedulerDB at dsn (a go-sql-driver DSN for MySQL, a
// file path or file: URI for SQLite) and checks that it answers.
func Open(ctx context.Context, dialect Dialect, dsn string) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("schedulerdb: dsn is empty: give a MySQL DSN (user:pass@tcp(host:3306)/db) or an SQLite file path")
	}
	if dialect == SQLite {
		dsn = sqlutil.SQLiteDSN(dsn)
	} else if dialect == MySQL {
		var err error
		if dsn, err = sqlutil.MySQLDSN(dsn); err != nil {
			return nil, fmt.Errorf("%s: %w", "schedulerdb", err)
		}
	}
	sqldb, err := sql.Open(string(dialect), dsn)
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: open %s: %w", dialect, err)
	}
	db, err := New(sqldb, dialect)
	if err != nil {
		_ = sqldb.Close()
		return nil, err
	}
	if err := db.retry(ctx, func() error { return sqldb.PingContext(ctx) }); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("schedulerdb: connect %s: %w", dialect, err)
	}
	return db, nil
}

// New wraps an already opened database. For SQLite the connection should
// use WAL mode; New works without it, only with less concurrency.
func New(sqldb *sql.DB, dialect Dialect) (*DB, error) {
	if dialect != MySQL && dialect != SQLite {
		return nil, fmt.Errorf("schedulerdb: dialect %q is not supported: use %q or %q", dialect, MySQL, SQLite)
	}
	db := &DB{sql: sqldb, dialect: dialect, now: time.Now}
	db.injections = newInjectQueue(db)
	return db, nil
}

// SetClock replaces the clock used for claimed_at, complete_at and the
// staleness rule; tests use it to move time forward.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// SQL returns the underlying database handle.
func (db *DB) SQL() *sql.DB { return db.sql }

// Dialect returns the dialect the DB was opened with.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes the underlying database handle.
func (db *DB) Close() error { return db.sql.Close() }

func (db *DB) epoch() int64 { return db.now().Unix() }

// querier is what both a transaction and a dedicated connection offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withTx runs fn in one transaction, retried as a whole on transient errors.
// lock, when not empty, serialises the transaction against every other one
// taking the same lock: a named lock on MySQL, and on SQLite the database's
// write lock taken at BEGIN IMMEDIATE (which serialises all writers anyway).
func (db *DB) withTx(ctx context.Context, lock string, fn func(q querier) error) error {
	return db.retry(ctx, func() error {
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		if db.dialect == SQLite {
			return sqlutil.SQLiteImmediateTx(ctx, conn, func() error { return fn(conn) })
		}
		if lock != "" {
			release, err := mysqlLocks(ctx, conn, []string{lockName(lock)})
			if err != nil {
				return err
			}
			defer release()
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// lockWait bounds how long a MySQL named lock is waited for; the holders
// only run short transactions.
const lockWait = 30

// mysqlLocks takes the named locks, in the order given, in one statement.
func mysqlLocks(ctx context.Context, conn *sql.Conn, names []string) (release func(), err error) {
	marks := make([]string, len(names))
	args := make([]any, len(names))
	for i, n := range names {
		marks[i], args[i] = fmt.Sprintf("GET_LOCK(?, %d)", lockWait), n
	}
	releaseAll := func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_ALL_LOCKS()"); err != nil {
			// A session that may still hold locks must not be reused.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	got := make([]sql.NullInt64, len(names))
	dest := make([]any, len(names))
	for i := range got {
		dest[i] = &got[i]
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(marks, ", "), args...).Scan(dest...); err != nil {
		releaseAll()
		return nil, fmt.Errorf("take %d injection locks: %w", len(names), err)
	}
	for i, g := range got {
		if !g.Valid || g.Int64 != 1 {
			releaseAll()
			return nil, fmt.Errorf("take lock %s: %w", names[i], errLockTimeout)
		}
	}
	return releaseAll, nil
}

var errLockTimeout = errors.New("lock wait timeout")

// lockName keeps MySQL lock names within their 64-character limit.
func lockName(name string) string {
	name = "lrsdb:" + name
	if len(name) <= 64 {
		return name
	}
	sum := sha1.Sum([]byte(name))
	return "lrsdb:" + hex.EncodeToString(sum[:])
}
