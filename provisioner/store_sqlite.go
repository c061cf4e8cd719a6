package provisioner

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"

	// The SQLite driver ("sqlite"), pure Go so that builds need no cgo.
	_ "modernc.org/sqlite"
)

// sqliteDialect keeps ?-placeholders and takes SQLite's write lock for
// migrations with BEGIN IMMEDIATE.
var sqliteDialect = dialect{
	name:     "sqlite",
	rebind:   func(q string) string { return q },
	lockIsTx: true,
	lockMigrations: func(ctx context.Context, conn *sql.Conn) (func(bool) error, error) {
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return nil, err
		}
		return func(ok bool) error {
			stmt := "ROLLBACK"
			if ok {
				stmt = "COMMIT"
			}
			_, err := conn.ExecContext(context.Background(), stmt)
			return err
		}, nil
	},
}

func openSQLite(ctx context.Context, path string) (Store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and a single
	// connection turns lock contention into queueing instead of
	// SQLITE_BUSY retries.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	if err := migrate(ctx, db, sqliteDialect); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("SQLite %s: %w", path, err)
	}
	l := &localLeader{}
	return &sqlStore{db: db, d: sqliteDialect, leader: l.try}, nil
}

// localLeader elects within one process: SQLite serves a single replica.
type localLeader struct{ mu sync.Mutex }

func (l *localLeader) try(context.Context) (Leadership, bool, error) {
	if !l.mu.TryLock() {
		return nil, false, nil
	}
	return &localLeadership{mu: &l.mu, lost: make(chan struct{})}, true, nil
}

type localLeadership struct {
	mu   *sync.Mutex
	once sync.Once
	lost chan struct{}
}

func (l *localLeadership) Lost() <-chan struct{} { return l.lost }

func (l *localLeadership) Release() {
	l.once.Do(func() {
		close(l.lost)
		l.mu.Unlock()
	})
}
