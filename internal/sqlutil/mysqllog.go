package sqlutil

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// RouteMySQLLog sends go-sql-driver/mysql's own log lines ("closing bad
// idle connection: EOF", "unexpected EOF" while a server restarts) into
// logger at debug level, with from=mysql: the callers log the failures
// that matter, with their context, and retry; these lines would otherwise
// reach standard error outside the structured log.
func RouteMySQLLog(logger *slog.Logger) {
	_ = mysql.SetLogger(mysqlLogger{logger})
}

type mysqlLogger struct{ l *slog.Logger }

// Print logs one driver line.
func (m mysqlLogger) Print(v ...any) {
	if !m.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	m.l.Debug(strings.TrimSpace(fmt.Sprint(v...)), "from", "mysql")
}
