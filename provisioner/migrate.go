package provisioner

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds the versioned schema per dialect: NNNN_name.sql, applied
// in order, each once, recorded in schema_migrations.
//
//go:embed migrations
var migrations embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises replicas
// migrating the same database at start.
const migrationLockKey = 7_240_001

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", dir, name)
		}
		b, err := migrations.ReadFile(dir + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies pending migrations on one connection while holding the
// dialect's lock, so replicas starting together apply each exactly once.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	ms, err := loadMigrations(d.name)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	finish, err := d.lockMigrations(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	if err := applyMigrations(ctx, conn, d, ms); err != nil {
		_ = finish(false)
		return err
	}
	if err := finish(true); err != nil {
		return fmt.Errorf("migrate: release lock: %w", err)
	}
	return nil
}

// execer is a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func applyMigrations(ctx context.Context, conn *sql.Conn, d dialect, ms []migration) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: scan version: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		// SQLite's lock is itself a transaction (BEGIN IMMEDIATE), which
		// cannot nest; PostgreSQL's advisory lock is not, so each
		// migration gets its own transaction there.
		var ex execer = conn
		var tx *sql.Tx
		if !d.lockIsTx {
			t, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return fmt.Errorf("migrate %s: begin: %w", m.name, err)
			}
			tx, ex = t, t
		}
		if _, err := ex.ExecContext(ctx, m.sql); err != nil {
			if tx != nil {
				_ = tx.Rollback()
			}
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if _, err := ex.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`), m.version, m.name, time.Now().UnixMilli()); err != nil {
			if tx != nil {
				_ = tx.Rollback()
			}
			return fmt.Errorf("migrate %s: record: %w", m.name, err)
		}
		if tx != nil {
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("migrate %s: commit: %w", m.name, err)
			}
		}
	}
	return nil
}
