package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// The three drivers a bridge DB can live on.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/labrunner/labrunner/internal/sqlutil"
)

// Dialect names the SQL database the bridge DB lives on.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	MySQL    Dialect = "mysql"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned when no task row matches.
var ErrNotFound = errors.New("store: task not found")

// ParseDialect accepts "sqlite", "mysql", "mariadb", "postgres" or "postgresql".
func ParseDialect(s string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sqlite", "sqlite3":
		return SQLite, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "postgres", "postgresql", "pgx":
		return Postgres, nil
	}
	return "", fmt.Errorf("store: dialect %q is not supported: use \"sqlite\", \"mysql\" (MySQL/MariaDB) or \"postgres\"", s)
}

func (d Dialect) driver() string {
	if d == Postgres {
		return "pgx"
	}
	return string(d)
}

// Store is the bridge DB, safe for concurrent use and for sharing between
// bridge instances.
type Store struct {
	sql        *sql.DB
	dialect    Dialect
	skipLocked bool // the database has SELECT … FOR UPDATE SKIP LOCKED
	now        func() time.Time
	batches    batches                   // MySQL Create and BindBuildRequest calls waiting for a batch
	autoInc    sqlutil.AutoIncrementRule // how MySQL numbers multi-row inserts
}

// Open connects to the bridge DB at dsn (an SQLite file path, a
// go-sql-driver MySQL DSN or a PostgreSQL URL) and applies the migrations it
// lacks.
func Open(ctx context.Context, dialect Dialect, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("store: dsn is empty: give an SQLite file path, a MySQL DSN (user:pass@tcp(host:3306)/db) or a PostgreSQL URL")
	}
	if _, err := ParseDialect(string(dialect)); err != nil {
		return nil, err
	}
	if dialect == SQLite {
		dsn = sqlutil.SQLiteDSN(dsn)
	} else if dialect == MySQL {
		var err error
		if dsn, err = sqlutil.MySQLDSN(dsn); err != nil {
			return nil, fmt.Errorf("%s: %w", "store", err)
		}
	}
	sqldb, err := sql.Open(dialect.driver(), dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, err)
	}
	s, err := New(ctx, sqldb, dialect)
	if err != nil {
		_ = sqldb.Close()
		return nil, err
	}
	return s, nil
}

// New wraps an already opened database and applies the migrations it lacks.
func New(ctx context.Context, sqldb *sql.DB, dialect Dialect) (*Store, error) {
	if _, err := ParseDialect(string(dialect)); err != nil {
		return nil, err
	}
	s := &Store{sql: sqldb, dialect: dialect, now: time.Now}
	s.batches = newBatches(s)
	if err := s.retry(ctx, func() error { return sqldb.PingContext(ctx) }); err != nil {
		return nil, fmt.Errorf("store: connect %s: %w", dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	skip, err := s.detectSkipLocked(ctx)
	if err != nil {
		return nil, err
	}
	s.skipLocked = skip
	return s, nil
}

// SetClock replaces the clock used for processedDate and leases; tests use
// it to move time forward.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// SQL returns the underlying database handle.
func (s *Store) SQL() *sql.DB { return s.sql }

// Dialect returns the dialect the store was opened with.
func (s *Store) Dialect() Dialect { return s.dialect }

// SkipLocked reports whether lease acquisition uses SELECT … FOR UPDATE SKIP
// LOCKED (PostgreSQL, MariaDB ≥ 10.6, MySQL ≥ 8) rather than conditional
// UPDATEs alone.
func (s *Store) SkipLocked() bool { return s.skipLocked }

// Close closes the underlying database handle.
func (s *Store) Close() error { return s.sql.Close() }

func (s *Store) epoch() int64 { return s.now().Unix() }

func (s *Store) detectSkipLocked(ctx context.Context) (bool, error) {
	switch s.dialect {
	case Postgres:
		return true, nil
	case SQLite:
		return false, nil
	}
	var version string
	if err := s.retry(ctx, func() error {
		return s.sql.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	}); err != nil {
		return false, fmt.Errorf("store: read server version: %w", err)
	}
	return mysqlHasSkipLocked(version), nil
}

// mysqlHasSkipLocked reads a VERSION() string: MariaDB has SKIP LOCKED from
// 10.6, MySQL from 8.0.
func mysqlHasSkipLocked(version string) bool {
	parts := strings.SplitN(strings.SplitN(version, "-", 2)[0], ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return major > 10 || (major == 10 && minor >= 6)
	}
	return major >= 8
}

// q rewrites the ? placeholders of query for PostgreSQL ($1, $2, …).
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
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

// querier is what both a transaction and a dedicated connection offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withTx runs fn in one transaction, retried as a whole on transient
// errors. On SQLite the transaction starts with BEGIN IMMEDIATE, taking the
// write lock at once, so that read-then-write sequences cannot interleave.
func (s *Store) withTx(ctx context.Context, fn func(q querier) error) error {
	return s.retry(ctx, func() error {
		if s.dialect == SQLite {
			conn, err := s.sql.Conn(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			return sqlutil.SQLiteImmediateTx(ctx, conn, func() error { return fn(conn) })
		}
		// READ COMMITTED: InnoDB then releases the locks of rows a locking
		// read examined but did not return (PostgreSQL's default anyway).
		tx, err := s.sql.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
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
