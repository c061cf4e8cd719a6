package schedulerdb

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"testing"
)

// The columns of the 0.8.2 schema (docs/bridge.md, "SchedulerDB") as the
// database itself reports them.
func TestSchemaMatchesSpec(t *testing.T) {
	type col struct {
		table, column, typ string
		notNull            bool
		def                string // "" for none or NULL, "-" for unchecked
	}
	spec := []col{
		{"buildsets", "external_idstring", "varchar(256)", false, ""},
		{"buildsets", "reason", "varchar(256)", false, ""},
		{"buildsets", "sourcestampid", "int", true, ""},
		{"buildsets", "submitted_at", "int", true, ""},
		{"buildsets", "complete", "smallint", true, "0"},
		{"buildsets", "complete_at", "int", false, ""},
		{"buildsets", "results", "smallint", false, ""},
		{"buildset_properties", "buildsetid", "int", true, ""},
		{"buildset_properties", "property_name", "varchar(256)", true, ""},
		{"buildset_properties", "property_value", "varchar(1024)", true, ""},
		{"buildrequests", "buildsetid", "int", true, ""},
		{"buildrequests", "buildername", "varchar(256)", true, ""},
		{"buildrequests", "priority", "int", true, "0"},
		{"buildrequests", "claimed_at", "int", false, "0"},
		{"buildrequests", "claimed_by_name", "varchar(256)", false, ""},
		{"buildrequests", "claimed_by_incarnation", "varchar(256)", false, ""},
		{"buildrequests", "complete", "int", false, "0"},
		{"buildrequests", "results", "smallint", false, ""},
		{"buildrequests", "submitted_at", "int", true, ""},
		{"buildrequests", "complete_at", "int", false, ""},
		{"builds", "number", "int", true, ""},
		{"builds", "brid", "int", true, ""},
		{"builds", "start_time", "int", true, ""},
		{"builds", "finish_time", "int", false, ""},
		{"sourcestamps", "branch", "varchar(256)", false, ""},
		{"sourcestamps", "revision", "varchar(256)", false, ""},
		{"sourcestamps", "patchid", "int", false, ""},
		{"sourcestamps", "repository", "text", true, "-"},
		{"sourcestamps", "project", "text", true, "-"},
	}
	intWidth := regexp.MustCompile(`^(int|smallint)\(\d+\)$`)
	norm := func(typ string, def sql.NullString) (string, string) {
		typ = strings.ToLower(typ)
		typ = intWidth.ReplaceAllString(typ, "$1")
		if typ == "integer" {
			typ = "int"
		}
		d := def.String
		if !def.Valid || strings.EqualFold(d, "NULL") {
			d = ""
		}
		return typ, d
	}
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		ctx := context.Background()
		for _, want := range spec {
			var (
				typ, nullable string
				notNull       bool
				def           sql.NullString
			)
			if tg.dialect == MySQL {
				err := db.SQL().QueryRowContext(ctx, `SELECT COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS
					WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`, want.table, want.column).
					Scan(&typ, &nullable, &def)
				if err != nil {
					t.Errorf("%s.%s: %v", want.table, want.column, err)
					continue
				}
				notNull = nullable == "NO"
			} else {
				found := false
				rows, err := db.SQL().QueryContext(ctx, "SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?)", want.table)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var name string
					var nn int
					var ct string
					var d sql.NullString
					if err := rows.Scan(&name, &ct, &nn, &d); err != nil {
						t.Fatal(err)
					}
					if name == want.column {
						found, typ, notNull, def = true, ct, nn == 1, d
					}
				}
				_ = rows.Close()
				if !found {
					t.Errorf("%s.%s: missing", want.table, want.column)
					continue
				}
			}
			gotType, gotDef := norm(typ, def)
			if gotType != want.typ || notNull != want.notNull || (want.def != "-" && gotDef != want.def) {
				t.Errorf("%s.%s = %s notNull=%v default=%q; spec says %s notNull=%v default=%q",
					want.table, want.column, gotType, notNull, gotDef, want.typ, want.notNull, want.def)
			}
		}
	})
}

// A SchedulerDB that Buildbot created has no bridge index; CreateSchema adds
// it, and the injection lookup goes through it rather than a table scan.
func TestCreateSchemaAddsBridgeIndexToExistingTables(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		if tg.dialect == MySQL {
			exec(t, db, "DROP INDEX buildsets_external_idstring ON buildsets")
		} else {
			exec(t, db, "DROP INDEX buildsets_external_idstring")
		}
		if err := db.CreateSchema(context.Background()); err != nil {
			t.Fatalf("CreateSchema on a table without the bridge index: %v", err)
		}
		if err := db.CreateSchema(context.Background()); err != nil {
			t.Fatalf("CreateSchema again: %v", err)
		}
		if tg.dialect != MySQL {
			if n := count(t, db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'buildsets_external_idstring'"); n != 1 {
				t.Fatal("buildsets_external_idstring was not added back")
			}
			return
		}
		if n := count(t, db, `SELECT COUNT(*) FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name = 'buildsets' AND index_name = 'buildsets_external_idstring'`); n == 0 {
			t.Fatal("buildsets_external_idstring was not added back")
		}
		var id, selectType, table, typ string
		var possible, key, keyLen, ref, rows, extra sql.NullString
		err := db.SQL().QueryRow(`EXPLAIN SELECT id, sourcestampid FROM buildsets
			WHERE submitted_at = 1 AND external_idstring = 'taskId:x' ORDER BY id LIMIT 1`).
			Scan(&id, &selectType, &table, &typ, &possible, &key, &keyLen, &ref, &rows, &extra)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(possible.String, "buildsets_external_idstring") {
			t.Errorf("the injection lookup cannot use buildsets_external_idstring (possible keys %q)", possible.String)
		}
	})
}
