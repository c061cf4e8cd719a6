package sqlutil

import (
	"database/sql"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// discard is the driver's logger after the test.
type discard struct{}

func (discard) Print(...any) {}

// TestRouteMySQLLog: what the driver itself logs (here, a server that
// hangs up during the handshake) lands in the structured log at debug
// level, and not at all at info level.
func TestRouteMySQLLog(t *testing.T) {
	defer func() { _ = mysql.SetLogger(discard{}) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte{0x05, 0x00}) // the start of a packet, then nothing
			_ = c.Close()
		}
	}()
	ping := func() {
		db, err := sql.Open("mysql", "root@tcp("+ln.Addr().String()+")/x?timeout=2s")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if db.Ping() == nil {
			t.Fatal("ping of a server that hangs up succeeded")
		}
	}
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs testsvc.LogBuffer
		RouteMySQLLog(logs.Logger(level))
		ping()
		routed := strings.Contains(logs.String(), "level=DEBUG") && strings.Contains(logs.String(), "from=mysql")
		if routed != (level == slog.LevelDebug) {
			t.Errorf("at %s, driver lines routed=%v:\n%s", level, routed, logs.String())
		}
	}
}
