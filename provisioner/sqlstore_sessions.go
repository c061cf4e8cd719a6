package provisioner

// Signed-out dashboard sessions in the SQL store.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

func (s *sqlStore) EndSession(ctx context.Context, id string, expires, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO dashboard_signouts (session_id, expires) VALUES (?, ?) ON CONFLICT (session_id) DO NOTHING`),
		id, ms(expires)); err != nil {
		return fmt.Errorf("record sign-out: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM dashboard_signouts WHERE expires < ?`), ms(now)); err != nil {
		return fmt.Errorf("forget expired sign-outs: %w", err)
	}
	return nil
}

func (s *sqlStore) SessionEnded(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM dashboard_signouts WHERE session_id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up sign-out: %w", err)
	}
	return true, nil
}
