package stdlog

import (
	"bytes"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestRouteSendsLogLinesToSlogAtTheLevel(t *testing.T) {
	defer func() { log.SetOutput(os.Stderr); log.SetFlags(log.LstdFlags) }()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	Route(logger, slog.LevelDebug)
	log.Printf("Error: %s", "dial tcp: connection refused")
	if buf.Len() != 0 {
		t.Fatalf("a debug-level line reached an info-level log: %q", buf.String())
	}

	Route(logger, slog.LevelWarn)
	log.Printf("Error: %s", "dial tcp: connection refused")
	log.Print(strings.Repeat("x", 5000))
	out := buf.String()
	if !strings.Contains(out, `level=WARN msg="Error: dial tcp: connection refused" from=library`) {
		t.Fatalf("log line not routed as a slog record: %q", out)
	}
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "…(cut)") || len(out) > 2300 {
		t.Fatalf("long line not cut to one record: %d bytes", len(out))
	}
}
