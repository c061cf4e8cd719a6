package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A try the caller cancelled is not worth a warning; other failures are.
func TestRetryLogQuietOnCancel(t *testing.T) {
	var buf bytes.Buffer
	l := leveled{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Error("request failed", "error", fmt.Errorf("Post x: %w", context.Canceled), "method", "POST")
	l.Error("request failed", "error", errors.New("connection refused"), "method", "POST")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[1], "level=WARN") {
		t.Errorf("log = %q, want the cancelled try at DEBUG and the refused one at WARN", buf.String())
	}
}
