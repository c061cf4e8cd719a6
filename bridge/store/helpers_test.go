package store

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// target is one fresh database of a dialect; open gives a new Store on it
// each time, as another bridge instance sharing the database would have.
type target struct {
	dialect Dialect
	dsn     string
	open    func(t *testing.T) *Store
}

var dialects = []Dialect{SQLite, MySQL, Postgres}

func freshDSN(t *testing.T, d Dialect) string {
	t.Helper()
	switch d {
	case SQLite:
		return filepath.Join(t.TempDir(), "bridge.db")
	case MySQL:
		return testsvc.MySQL(t)
	default:
		return testsvc.Postgres(t)
	}
}

// forEach runs f once per dialect, each time on a fresh database.
func forEach(t *testing.T, f func(t *testing.T, tg target)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			dsn := freshDSN(t, d)
			f(t, target{dialect: d, dsn: dsn, open: func(t *testing.T) *Store {
				t.Helper()
				s, err := Open(context.Background(), d, dsn)
				if err != nil {
					t.Fatalf("open %s: %v", d, err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}})
		})
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(stores ...*Store) *clock {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	for _, s := range stores {
		s.SetClock(c.now)
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

func create(t *testing.T, s *Store, taskID string, runID int) Task {
	t.Helper()
	row, _, err := s.Create(context.Background(), NewTask{TaskID: taskID, RunID: runID, Created: time.Unix(50, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func count(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.SQL().QueryRow(s.q(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
