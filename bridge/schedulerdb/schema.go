package schedulerdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The 0.8.2 tables (master/buildbot/db/schema/tables.sql at the 0.8.2 branch
// point, the layout of build-buildapi's schedulerdb_schema.mysql) described
// once and rendered per dialect, so that the MySQL and SQLite databases cannot
// drift apart. Types are written in the portable subset both dialects accept;
// only the auto-increment primary key and the prefix length of indexes on long
// VARCHARs differ.

type column struct {
	name    string
	typ     string // INTEGER, SMALLINT, VARCHAR(n), TEXT
	notNull bool
	def     string // SQL default literal, "" for none
	autoPK  bool   // INTEGER PRIMARY KEY, auto-increment
	pk      bool   // INTEGER PRIMARY KEY without auto-increment
}

type index struct {
	name   string
	column string
	prefix int // MySQL index prefix length for long VARCHARs, 0 for none
	// bridge marks an index the bridge adds to the 0.8.2 layout. Buildbot
	// ignores it; CreateSchema also adds it to tables that already exist.
	bridge bool
}

type table struct {
	name    string
	columns []column
	indexes []index
}

// schemaVersion is the value of the `version` table for the 0.8.2 schema.
const schemaVersion = 6

var tables = []table{
	{name: "buildrequests", columns: []column{
		{name: "id", typ: "INTEGER", autoPK: true},
		{name: "buildsetid", typ: "INTEGER", notNull: true},
		{name: "buildername", typ: "VARCHAR(256)", notNull: true},
		{name: "priority", typ: "INTEGER", notNull: true, def: "0"},
		{name: "claimed_at", typ: "INTEGER", def: "0"},
		{name: "claimed_by_name", typ: "VARCHAR(256)", def: "NULL"},
		{name: "claimed_by_incarnation", typ: "VARCHAR(256)", def: "NULL"},
		{name: "complete", typ: "INTEGER", def: "0"},
		{name: "results", typ: "SMALLINT"},
		{name: "submitted_at", typ: "INTEGER", notNull: true},
		{name: "complete_at", typ: "INTEGER"},
	}, indexes: []index{
		{name: "buildrequests_buildsetid", column: "buildsetid"},
		{name: "buildrequests_buildername", column: "buildername", prefix: 255},
		{name: "buildrequests_complete", column: "complete"},
		{name: "buildrequests_claimed_at", column: "claimed_at"},
		{name: "buildrequests_claimed_by_name", column: "claimed_by_name", prefix: 255},
	}},
	{name: "builds", columns: []column{
		{name: "id", typ: "INTEGER", autoPK: true},
		{name: "number", typ: "INTEGER", notNull: true},
		{name: "brid", typ: "INTEGER", notNull: true},
		{name: "start_time", typ: "INTEGER", notNull: true},
		{name: "finish_time", typ: "INTEGER"},
	}, indexes: []index{
		{name: "builds_number", column: "number"},
		{name: "builds_brid", column: "brid"},
	}},
	{name: "buildset_properties", columns: []column{
		{name: "buildsetid", typ: "INTEGER", notNull: true},
		{name: "property_name", typ: "VARCHAR(256)", notNull: true},
		{name: "property_value", typ: "VARCHAR(1024)", notNull: true},
	}, indexes: []index{
		{name: "buildset_properties_buildsetid", column: "buildsetid"},
	}},
	{name: "buildsets", columns: []column{
		{name: "id", typ: "INTEGER", autoPK: true},
		{name: "external_idstring", typ: "VARCHAR(256)"},
		{name: "reason", typ: "VARCHAR(256)"},
		{name: "sourcestampid", typ: "INTEGER", notNull: true},
		{name: "submitted_at", typ: "INTEGER", notNull: true},
		{name: "complete", typ: "SMALLINT", notNull: true, def: "0"},
		{name: "complete_at", typ: "INTEGER"},
		{name: "results", typ: "SMALLINT"},
	}, indexes: []index{
		{name: "buildsets_complete", column: "complete"},
		{name: "buildsets_submitted_at", column: "submitted_at"},
		// Injection looks its earlier attempt up by external_idstring;
		// through submitted_at alone, a burst of tasks scheduled in the same
		// second made every lookup read the whole burst.
		{name: "buildsets_external_idstring", column: "external_idstring", prefix: 255, bridge: true},
	}},
	{name: "change_files", columns: []column{
		{name: "changeid", typ: "INTEGER", notNull: true},
		{name: "filename", typ: "VARCHAR(1024)", notNull: true},
	}, indexes: []index{{name: "change_files_changeid", column: "changeid"}}},
	{name: "change_links", columns: []column{
		{name: "changeid", typ: "INTEGER", notNull: true},
		{name: "link", typ: "VARCHAR(1024)", notNull: true},
	}, indexes: []index{{name: "change_links_changeid", column: "changeid"}}},
	{name: "change_properties", columns: []column{
		{name: "changeid", typ: "INTEGER", notNull: true},
		{name: "property_name", typ: "VARCHAR(256)", notNull: true},
		{name: "property_value", typ: "VARCHAR(1024)", notNull: true},
	}, indexes: []index{{name: "change_properties_changeid", column: "changeid"}}},
	{name: "changes", columns: []column{
		{name: "changeid", typ: "INTEGER", autoPK: true},
		{name: "author", typ: "VARCHAR(1024)", notNull: true},
		{name: "comments", typ: "VARCHAR(1024)", notNull: true},
		{name: "is_dir", typ: "SMALLINT", notNull: true},
		{name: "branch", typ: "VARCHAR(1024)"},
		{name: "revision", typ: "VARCHAR(256)"},
		{name: "revlink", typ: "VARCHAR(256)"},
		{name: "when_timestamp", typ: "INTEGER", notNull: true},
		{name: "category", typ: "VARCHAR(256)"},
		{name: "repository", typ: "TEXT", notNull: true, def: "''"},
		{name: "project", typ: "TEXT", notNull: true, def: "''"},
	}, indexes: []index{
		{name: "changes_branch", column: "branch", prefix: 255},
		{name: "changes_revision", column: "revision", prefix: 255},
		{name: "changes_author", column: "author", prefix: 255},
		{name: "changes_category", column: "category", prefix: 255},
		{name: "changes_when_timestamp", column: "when_timestamp"},
	}},
	{name: "patches", columns: []column{
		{name: "id", typ: "INTEGER", pk: true},
		{name: "patchlevel", typ: "INTEGER", notNull: true},
		{name: "patch_base64", typ: "TEXT", notNull: true},
		{name: "subdir", typ: "TEXT"},
	}},
	{name: "scheduler_changes", columns: []column{
		{name: "schedulerid", typ: "INTEGER"},
		{name: "changeid", typ: "INTEGER"},
		{name: "important", typ: "SMALLINT"},
	}, indexes: []index{
		{name: "scheduler_changes_schedulerid", column: "schedulerid"},
		{name: "scheduler_changes_changeid", column: "changeid"},
	}},
	{name: "scheduler_upstream_buildsets", columns: []column{
		{name: "buildsetid", typ: "INTEGER"},
		{name: "schedulerid", typ: "INTEGER"},
		{name: "active", typ: "SMALLINT"},
	}, indexes: []index{
		{name: "scheduler_upstream_buildsets_buildsetid", column: "buildsetid"},
		{name: "scheduler_upstream_buildsets_schedulerid", column: "schedulerid"},
	}},
	{name: "schedulers", columns: []column{
		{name: "schedulerid", typ: "INTEGER", autoPK: true},
		{name: "name", typ: "VARCHAR(128)", notNull: true},
		{name: "state", typ: "VARCHAR(1024)", notNull: true},
		{name: "class_name", typ: "VARCHAR(128)", notNull: true},
	}},
	{name: "sourcestamp_changes", columns: []column{
		{name: "sourcestampid", typ: "INTEGER", notNull: true},
		{name: "changeid", typ: "INTEGER", notNull: true},
	}, indexes: []index{{name: "sourcestamp_changes_sourcestampid", column: "sourcestampid"}}},
	{name: "sourcestamps", columns: []column{
		{name: "id", typ: "INTEGER", autoPK: true},
		{name: "branch", typ: "VARCHAR(256)", def: "NULL"},
		{name: "revision", typ: "VARCHAR(256)", def: "NULL"},
		{name: "patchid", typ: "INTEGER", def: "NULL"},
		{name: "repository", typ: "TEXT", notNull: true, def: "''"},
		{name: "project", typ: "TEXT", notNull: true, def: "''"},
	}},
	{name: "version", columns: []column{
		{name: "version", typ: "INTEGER", notNull: true},
	}},
}

// schemaStatements renders every table and index for d. All statements are
// idempotent (IF NOT EXISTS), so CreateSchema can run on every start.
func schemaStatements(d Dialect) []string {
	var out []string
	for _, t := range tables {
		var cols []string
		for _, c := range t.columns {
			cols = append(cols, renderColumn(d, c))
		}
		if d == MySQL {
			// Inline because MySQL (unlike MariaDB and SQLite) has no
			// CREATE INDEX IF NOT EXISTS.
			for _, ix := range t.indexes {
				col := ix.column
				if ix.prefix > 0 {
					col = fmt.Sprintf("%s(%d)", col, ix.prefix)
				}
				cols = append(cols, fmt.Sprintf("INDEX %s (%s)", ix.name, col))
			}
		}
		stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n  %s\n)", t.name, strings.Join(cols, ",\n  "))
		if d == MySQL {
			// InnoDB rather than the MyISAM of the 2015 dump: injection is one
			// transaction and the claim relies on row-level atomicity.
			stmt += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
		}
		out = append(out, stmt)
		if d == SQLite {
			for _, ix := range t.indexes {
				out = append(out, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", ix.name, t.name, ix.column))
			}
		}
	}
	return out
}

func renderColumn(d Dialect, c column) string {
	switch {
	case c.autoPK && d == SQLite:
		// AUTOINCREMENT so that ids are never reused after a delete, as on MySQL.
		return c.name + " INTEGER PRIMARY KEY AUTOINCREMENT"
	case c.autoPK:
		return c.name + " INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY"
	case c.pk:
		return c.name + " INTEGER NOT NULL PRIMARY KEY"
	}
	s := c.name + " " + c.typ
	if c.notNull {
		s += " NOT NULL"
	}
	if c.def != "" {
		s += " DEFAULT " + c.def
	}
	return s
}

// CreateSchema creates the 0.8.2 tables and indexes that are missing and
// records the schema version once. It is safe to run on every start and from
// several instances at once.
func (db *DB) CreateSchema(ctx context.Context) error {
	for _, stmt := range schemaStatements(db.dialect) {
		if err := db.retry(ctx, func() error {
			_, err := db.sql.ExecContext(ctx, stmt)
			return err
		}); err != nil {
			return fmt.Errorf("schedulerdb: create schema: %s: %w", firstLine(stmt), err)
		}
	}
	if err := db.addBridgeIndexes(ctx); err != nil {
		return err
	}
	// The version row is written under the injection lock so that two
	// instances starting together do not both insert it.
	err := db.withTx(ctx, "schema", func(q querier) error {
		var n int
		if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM version").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := q.ExecContext(ctx, "INSERT INTO version (version) VALUES (?)", schemaVersion)
		return err
	})
	if err != nil {
		return fmt.Errorf("schedulerdb: record schema version: %w", err)
	}
	return nil
}

// addBridgeIndexes creates the bridge's own indexes on MySQL tables that
// existed before the bridge first ran (CREATE TABLE IF NOT EXISTS leaves
// them alone, and MySQL has no CREATE INDEX IF NOT EXISTS). On SQLite the
// schema statements already create missing indexes.
func (db *DB) addBridgeIndexes(ctx context.Context) error {
	if db.dialect != MySQL {
		return nil
	}
	for _, t := range tables {
		for _, ix := range t.indexes {
			if !ix.bridge {
				continue
			}
			err := db.retry(ctx, func() error {
				var n int
				if err := db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.statistics
					WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?`, t.name, ix.name).Scan(&n); err != nil || n > 0 {
					return err
				}
				_, err := db.sql.ExecContext(ctx, fmt.Sprintf("CREATE INDEX %s ON %s (%s(%d))", ix.name, t.name, ix.column, ix.prefix))
				if isDuplicateKeyName(err) { // another instance added it meanwhile
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("schedulerdb: add index %s on %s: %w", ix.name, t.name, err)
			}
		}
	}
	return nil
}

// isDuplicateKeyName reports MySQL's ER_DUP_KEYNAME (1061).
func isDuplicateKeyName(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1061
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
