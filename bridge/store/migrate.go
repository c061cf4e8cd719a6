package store

// Migrations: migrations/<dialect>/NNN_name.sql, embedded in the binary.
// At open, under a database-wide lock (pg_advisory_lock on PostgreSQL,
// GET_LOCK on MySQL, the write lock of BEGIN IMMEDIATE on SQLite):
//
//	create schema_migrations if missing
//	for each migration newer than the newest applied: run it, record it
//
// so concurrent starts apply each migration exactly once, and a database
// newer than the binary is refused rather than written to.

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/labrunner/labrunner/internal/sqlutil"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version    int
	name       string
	statements []string
}

// migrationLockKey is the PostgreSQL advisory lock key and (as text) the
// MySQL lock name that serialise migrations; any fixed value unique to the
// bridge DB works.
const (
	migrationLockKey  = 0x6c72_6272_6467 // "lrbrdg"
	migrationLockName = "labrunner.bridge.store.migrate"
)

func loadMigrations(d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", d, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("store: migration file %s/%s must be named NNN_description.sql", dir, name)
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, statements: splitStatements(string(body))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// splitStatements drops "--" comment lines and splits on ";" at line ends,
// so that migrations run without multi-statement support in the driver.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.retry(ctx, func() error {
		return s.sql.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

func (s *Store) migrate(ctx context.Context) error {
	migs, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	err = s.retry(ctx, func() error {
		conn, err := s.sql.Conn(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		switch s.dialect {
		case SQLite:
			return s.migrateSQLite(ctx, conn, migs)
		case Postgres:
			if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			defer func() {
				_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
			}()
		case MySQL:
			var got sql.NullInt64
			if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 120)", migrationLockName).Scan(&got); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			if got.Int64 != 1 {
				return fmt.Errorf("take migration lock %s: not granted within 120 s: another bridge is migrating; retry", migrationLockName)
			}
			defer func() {
				_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", migrationLockName)
			}()
		}
		return s.applyMigrations(ctx, conn, migs)
	})
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.dialect, err)
	}
	return nil
}

func (s *Store) migrateSQLite(ctx context.Context, conn *sql.Conn, migs []migration) error {
	// SQLite's DDL is transactional: the whole migration is one write
	// transaction, which is also the lock against other processes.
	return sqlutil.SQLiteImmediateTx(ctx, conn, func() error { return s.applyMigrations(ctx, conn, migs) })
}

// applyMigrations runs on a connection holding the migration lock.
func (s *Store) applyMigrations(ctx context.Context, conn *sql.Conn, migs []migration) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		name VARCHAR(255) NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&newest); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if known := migs[len(migs)-1].version; int(newest.Int64) > known {
		return fmt.Errorf("the database is at schema version %d but this bridge knows only up to %d: run a newer bridge", newest.Int64, known)
	}
	for _, m := range migs {
		if m.version <= int(newest.Int64) {
			continue
		}
		if err := s.applyOne(ctx, conn, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *Store) applyOne(ctx context.Context, conn *sql.Conn, m migration) error {
	var q querier = conn
	var tx *sql.Tx
	if s.dialect == Postgres {
		// PostgreSQL's DDL is transactional: a migration lands whole or not
		// at all. MySQL commits each DDL statement, which is why its
		// migrations are written to be re-runnable (IF NOT EXISTS).
		var err error
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return err
		}
		q = tx
	}
	fail := func(err error) error {
		if tx != nil {
			_ = tx.Rollback()
		}
		return err
	}
	for _, stmt := range m.statements {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fail(fmt.Errorf("%s: %w", firstLine(stmt), err))
		}
	}
	if _, err := q.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, s.epoch()); err != nil {
		return fail(fmt.Errorf("record version %d: %w", m.version, err))
	}
	if tx != nil {
		return tx.Commit()
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
