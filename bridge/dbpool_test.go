package bridge

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"
)

// The bridge holds at most max_open_conns connections to each database, so
// that a busy instance cannot take the SchedulerDB's connections away from
// the Buildbot masters that share it: statements past the bound wait.
func TestDatabaseConnectionsAreBounded(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{mutate: func(c *Config) {
			c.SchedulerDB.MaxOpenConns = 3
			c.BBBDB.MaxOpenConns = 2
		}})
		b := e.newBridge()
		t.Cleanup(func() { _ = b.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Twenty concurrent slow statements against each database: the
		// pool never opens more than its bound, and some have to wait.
		check := func(name string, sqlDB *sql.DB, want int) {
			var wg sync.WaitGroup
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rows, err := sqlDB.QueryContext(ctx, "SELECT 1")
					if err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					time.Sleep(20 * time.Millisecond) // hold the connection
					_ = rows.Close()
				}()
			}
			wg.Wait()
			if st := sqlDB.Stats(); st.MaxOpenConnections != want || st.OpenConnections > want || st.WaitCount == 0 {
				t.Errorf("%s: MaxOpenConnections %d, open %d, waits %d; want bound %d with statements waiting", name, st.MaxOpenConnections, st.OpenConnections, st.WaitCount, want)
			}
		}
		check("buildbot_scheduler_db", b.SchedulerDB().SQL(), 3)
		check("bbb_db", b.Store().SQL(), 2)
	})
}

func TestDatabaseConnectionBoundConfig(t *testing.T) {
	var c Config
	c.applyDefaults()
	if c.SchedulerDB.MaxOpenConns != 32 || c.BBBDB.MaxOpenConns != 32 {
		t.Errorf("defaults: schedulerdb %d, bbb_db %d; want 32 each", c.SchedulerDB.MaxOpenConns, c.BBBDB.MaxOpenConns)
	}
	c.SchedulerDB.MaxOpenConns = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "buildbot_scheduler_db.max_open_conns is -1") {
		t.Errorf("Validate with max_open_conns -1 = %v, want an error naming buildbot_scheduler_db.max_open_conns", err)
	}
}
