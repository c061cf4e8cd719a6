package store

import (
	"context"

	"github.com/labrunner/labrunner/internal/sqlutil"
)

// retry runs fn again after transient errors (sqlutil.Retry). Everything it
// wraps is safe to run again.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	return sqlutil.Retry(ctx, transient, fn)
}

// transient reports errors that go away when the work is done again.
func transient(err error) bool { return sqlutil.Transient(err) }

// uniqueViolation reports an insert refused by a UNIQUE constraint.
func uniqueViolation(err error) bool { return sqlutil.UniqueViolation(err) }
