package provisioner

// Tokens in the SQL store.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

func (s *sqlStore) InsertToken(ctx context.Context, t TokenRecord) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO tokens (id, kind, hash, uses_left, expires, description, created) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		t.ID, t.Kind, t.Hash, t.UsesLeft, nullMS(t.Expires), t.Description, ms(t.Created))
	if isUniqueViolation(err) {
		return fmt.Errorf("token %s: %w", t.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store token %s: %w", t.ID, err)
	}
	return nil
}
func (s *sqlStore) TokenByHash(ctx context.Context, hash []byte) (TokenRecord, error) {
	var t TokenRecord
	var expires sql.NullInt64
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, kind, hash, uses_left, expires, description, created FROM tokens WHERE hash = ?`), hash).
		Scan(&t.ID, &t.Kind, &t.Hash, &t.UsesLeft, &expires, &t.Description, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	t.Expires = timePtr(expires)
	t.Created = fromMS(created)
	return t, nil
}
func (s *sqlStore) UseEnrollmentToken(ctx context.Context, hash []byte, now time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = ? AND kind = ? AND uses_left > 0 AND (expires IS NULL OR expires > ?)`),
		hash, client.TokenEnroll, ms(now))
	if err != nil {
		return fmt.Errorf("spend enrollment token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("enrollment token unknown, spent or expired: %w", ErrNotFound)
	}
	return nil
}
