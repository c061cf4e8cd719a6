package schedulerdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

const (
	retryAttempts = 8
	retryBase     = 20 * time.Millisecond
	retryMax      = 2 * time.Second
)

// retry runs fn until it succeeds, fails with a non-transient error, the
// attempts run out or ctx ends. Every statement or transaction it wraps must
// be safe to run again after a rollback.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	delay := retryBase
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !transient(err) || attempt == retryAttempts {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		delay = min(delay*2, retryMax)
	}
}

// transient reports errors that go away when the statement is run again:
// deadlocks, lock waits, a busy SQLite file, a dropped connection.
func transient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, errLockTimeout) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1205, 1213, 2006, 2013: // lock wait timeout, deadlock, server gone, lost connection
			return true
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}
