package provisioner

import (
	"context"
	"fmt"
	"strings"
)

// OpenStore opens the registry named by dbURL and applies pending
// migrations: postgres:// or postgresql:// URLs open PostgreSQL, anything
// else (a path, or sqlite:PATH) a SQLite file.
func OpenStore(ctx context.Context, dbURL string) (Store, error) {
	switch {
	case dbURL == "":
		return nil, fmt.Errorf("database URL is empty: set db in the config (or --db) to a SQLite path or a postgres:// URL")
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		return openPostgres(ctx, dbURL)
	default:
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite://"), "sqlite:"))
	}
}
