package schedulerdb

import (
	"context"
	"errors"

	"github.com/labrunner/labrunner/internal/sqlutil"
)

// retry runs fn again after transient errors (sqlutil.Retry). Every
// statement or transaction it wraps must be safe to run again after a
// rollback.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	return sqlutil.Retry(ctx, transient, fn)
}

// transient reports errors that go away when the statement is run again:
// those of sqlutil.Transient, and a named lock that was not free in time.
func transient(err error) bool {
	return errors.Is(err, errLockTimeout) || sqlutil.Transient(err)
}
