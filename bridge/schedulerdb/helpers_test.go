package schedulerdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// target is one fresh database of a dialect; open gives a new handle on
// it each time, as a second bridge instance sharing the database would have.
type target struct {
	dialect Dialect
	open    func(t *testing.T) *DB
}

// forEach runs f once per dialect, each time on a fresh database.
func forEach(t *testing.T, f func(t *testing.T, tg target)) {
	t.Helper()
	for _, d := range []Dialect{SQLite, MySQL} {
		t.Run(string(d), func(t *testing.T) {
			var dsn string
			if d == SQLite {
				dsn = filepath.Join(t.TempDir(), "scheduler.db")
			} else {
				dsn = testsvc.MySQL(t)
			}
			f(t, target{dialect: d, open: func(t *testing.T) *DB {
				t.Helper()
				ctx := context.Background()
				db, err := Open(ctx, d, dsn)
				if err != nil {
					t.Fatalf("open %s: %v", d, err)
				}
				t.Cleanup(func() { _ = db.Close() })
				if err := db.CreateSchema(ctx); err != nil {
					t.Fatalf("create schema: %v", err)
				}
				return db
			}})
		})
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(db ...*DB) *clock {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	for _, d := range db {
		d.SetClock(c.now)
	}
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func count(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func exec(t *testing.T, db *DB, query string, args ...any) {
	t.Helper()
	if _, err := db.SQL().Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func nullString(t *testing.T, db *DB, query string, args ...any) sql.NullString {
	t.Helper()
	var s sql.NullString
	if err := db.SQL().QueryRow(query, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

const taskA = "fN1ivKsXTxunRZfgkB2sZQ" // a 22-character slugid

func injection(taskID, builder string, scheduled int64) Injection {
	return Injection{
		TaskID:      taskID,
		BuilderName: builder,
		Sourcestamp: &SourcestampSpec{Branch: "https://hg.mozilla.org/integration/mozilla-inbound/"},
		Properties:  map[string]json.RawMessage{"product": json.RawMessage(`"firefox"`)},
		Scheduled:   time.Unix(scheduled, 0),
	}
}
