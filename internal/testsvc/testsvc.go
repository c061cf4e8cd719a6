// Package testsvc gives tests real connections to the services on the
// machine (RabbitMQ, PostgreSQL, MariaDB). A test that needs a service fails
// when it is missing; it never skips. `make test` starts the services first
// (scripts/ensure-services.sh). Addresses can be overridden with the
// LABRUNNER_TEST_AMQP_URL, LABRUNNER_TEST_POSTGRES_URL and
// LABRUNNER_TEST_MYSQL_DSN environment variables.
package testsvc

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	// Drivers for the databases the tests create.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// AMQPURL returns the RabbitMQ URL, failing the test when nothing listens there.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := env("LABRUNNER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	requireListening(t, "RabbitMQ", u)
	return u
}

// Postgres creates an empty PostgreSQL database for the test, drops it at
// cleanup, and returns its URL (pgx form).
func Postgres(t testing.TB) string {
	t.Helper()
	base := env("LABRUNNER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	requireListening(t, "PostgreSQL", base)
	admin := open(t, "pgx", base)
	name := "lrtest_" + Unique()
	exec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// MySQL creates an empty MariaDB database for the test, drops it at cleanup,
// and returns its go-sql-driver DSN (parseTime on).
func MySQL(t testing.TB) string {
	t.Helper()
	base := env("LABRUNNER_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/")
	requireListening(t, "MariaDB", "mysql://"+between(base, "tcp(", ")"))
	admin := open(t, "mysql", base)
	name := "lrtest_" + Unique()
	exec(t, admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name)
		_ = admin.Close()
	})
	return strings.TrimSuffix(base, "/") + "/" + name + "?parseTime=true&multiStatements=true"
}

// Unique returns a short random lower-case hex string for names of queues,
// databases and exchanges that must not collide between tests.
func Unique() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return s
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

func requireListening(t testing.TB, what, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: bad address %q: %v", what, rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): run `make services` (scripts/ensure-services.sh) to install and start it", what, u.Host, err)
	}
	_ = conn.Close()
}

func open(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("connect %s: %v", driver, err)
	}
	return db
}

func exec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
