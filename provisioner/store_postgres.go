package provisioner

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	// The PostgreSQL driver ("pgx").
	_ "github.com/jackc/pgx/v5/stdlib"
)

// assignerLockKey is the advisory lock whose holder runs the assigner.
const assignerLockKey = 7_240_002

// leaderCheckInterval is how often the leader checks that its lock
// connection is alive; a replica that lost it stops assigning within this.
const leaderCheckInterval = time.Second

var postgresDialect = dialect{
	name:   "postgres",
	rebind: rebindDollar,
	// A heartbeat is a status report that the next one supersedes; not
	// waiting for its WAL flush trades at most a few lost reports on a
	// database crash for far higher throughput. Directives, pools and
	// actions keep synchronous commits.
	heartbeatTxSetup: "SET LOCAL synchronous_commit TO OFF",
	lockMigrations: func(ctx context.Context, conn *sql.Conn) (func(bool) error, error) {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return nil, err
		}
		return func(bool) error {
			_, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLockKey)
			return err
		}, nil
	},
}

func openPostgres(ctx context.Context, dbURL string) (Store, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := migrate(ctx, db, postgresDialect); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	s := &sqlStore{db: db, d: postgresDialect}
	s.leader = func(ctx context.Context) (Leadership, bool, error) { return tryAdvisoryLeader(ctx, db) }
	return s, nil
}

// tryAdvisoryLeader takes the assigner lock on a dedicated connection: the
// lock lives exactly as long as that session, so a replica that dies (or
// whose connection is cut) frees it for another.
func tryAdvisoryLeader(ctx context.Context, db *sql.DB) (Leadership, bool, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("assigner lock: connect: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", assignerLockKey).Scan(&got); err != nil {
		_ = conn.Close()
		return nil, false, fmt.Errorf("assigner lock: %w", err)
	}
	if !got {
		_ = conn.Close()
		return nil, false, nil
	}
	l := &pgLeadership{conn: conn, lost: make(chan struct{}), stop: make(chan struct{})}
	go l.watch()
	return l, true, nil
}

type pgLeadership struct {
	conn *sql.Conn
	lost chan struct{}
	stop chan struct{}
	once sync.Once
}

func (l *pgLeadership) Lost() <-chan struct{} { return l.lost }

// watch pings the lock's session; when it fails the lock is gone.
func (l *pgLeadership) watch() {
	t := time.NewTicker(leaderCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*leaderCheckInterval)
			err := l.conn.PingContext(ctx)
			if err == nil {
				_, err = l.conn.ExecContext(ctx, "SELECT 1")
			}
			cancel()
			if err != nil {
				l.end(false)
				return
			}
		}
	}
}

func (l *pgLeadership) end(unlock bool) {
	l.once.Do(func() {
		close(l.stop)
		if unlock {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", assignerLockKey)
			cancel()
		}
		_ = l.conn.Close()
		close(l.lost)
	})
}

func (l *pgLeadership) Release() { l.end(true) }
