package sqlutil

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func TestSQLiteDSN(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/x.db":                      "file:/tmp/x.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)",
		"file:/tmp/x.db?mode=rwc":        "file:/tmp/x.db?mode=rwc&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)",
		"file:x?_pragma=busy_timeout(5)": "file:x?_pragma=busy_timeout(5)&_pragma=journal_mode(WAL)",
	} {
		if got := SQLiteDSN(in); got != want {
			t.Errorf("SQLiteDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorClassesFromRealDatabases(t *testing.T) {
	ctx := context.Background()
	sqliteDB, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(t.TempDir(), "t.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer sqliteDB.Close()
	mysqlDB, err := sql.Open("mysql", testsvc.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mysqlDB.Close()
	pgDB, err := sql.Open("pgx", testsvc.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pgDB.Close()
	for name, db := range map[string]*sql.DB{"sqlite": sqliteDB, "mysql": mysqlDB, "postgres": pgDB} {
		if _, err := db.ExecContext(ctx, "CREATE TABLE u (k INT PRIMARY KEY)"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO u VALUES (1)"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err := db.ExecContext(ctx, "INSERT INTO u VALUES (1)")
		if !UniqueViolation(err) || Transient(err) {
			t.Errorf("%s: duplicate key error %v: UniqueViolation=%v Transient=%v, want true, false", name, err, UniqueViolation(err), Transient(err))
		}
		_, err = db.ExecContext(ctx, "SELECT * FROM no_such_table")
		if err == nil || UniqueViolation(err) || Transient(err) {
			t.Errorf("%s: missing table error %v classed as unique or transient", name, err)
		}
	}
	for _, err := range []error{&mysql.MySQLError{Number: 1213}, &pgconn.PgError{Code: "40001"}, &pgconn.PgError{Code: "08006"}} {
		if !Transient(err) {
			t.Errorf("%v should be transient", err)
		}
	}
}

func TestRetryStopsAtPermanentErrorsAndAfterTheAttempts(t *testing.T) {
	ctx := context.Background()
	permanent, passing := errors.New("permanent"), errors.New("passing")
	calls := 0
	err := Retry(ctx, func(err error) bool { return err == passing }, func() error {
		calls++
		if calls < 3 {
			return passing
		}
		return permanent
	})
	if err != permanent || calls != 3 {
		t.Fatalf("got %v after %d calls; want the permanent error after 3", err, calls)
	}
	calls = 0
	err = Retry(ctx, func(error) bool { return true }, func() error { calls++; return passing })
	if err != passing || calls != retryAttempts {
		t.Fatalf("got %v after %d calls; want the last error after %d", err, calls, retryAttempts)
	}
}

func TestSQLiteImmediateTxCommitsOrRollsBack(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(t.TempDir(), "t.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE v (x INT)"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	insert := func(x int, fail error) error {
		return SQLiteImmediateTx(ctx, conn, func() error {
			if _, err := conn.ExecContext(ctx, "INSERT INTO v VALUES (?)", x); err != nil {
				return err
			}
			return fail
		})
	}
	boom := errors.New("boom")
	if err := insert(1, nil); err != nil {
		t.Fatal(err)
	}
	if err := insert(2, boom); err != boom {
		t.Fatalf("got %v, want fn's error", err)
	}
	var sum int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(x), 0) FROM v").Scan(&sum); err != nil || sum != 1 {
		t.Fatalf("sum %d (%v): want only the committed row", sum, err)
	}
}
