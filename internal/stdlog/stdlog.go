// Package stdlog routes the standard library's log package into a
// log/slog logger. Libraries labrunner uses log their retries there
// (httpbackoff, under client-go, prints "Error: …" with the whole HTTP
// answer for every failed try); without this those lines reach standard
// error outside the structured log, unfiltered by level.
package stdlog

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// Route sends every line written with the log package to logger at
// level, as a record with the line as message and from=library. Lines
// longer than 2000 bytes are cut (httpbackoff prints whole HTTP answers).
func Route(logger *slog.Logger, level slog.Level) {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(writer{logger: logger, level: level})
}

// writer turns each Write (one log call) into one slog record.
type writer struct {
	logger *slog.Logger
	level  slog.Level
}

const maxLine = 2000

// Write logs p, one record per call.
func (w writer) Write(p []byte) (int, error) {
	if !w.logger.Enabled(context.Background(), w.level) {
		return len(p), nil
	}
	msg := string(bytes.TrimRight(p, "\n"))
	if len(msg) > maxLine {
		msg = msg[:maxLine] + " …(cut)"
	}
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	w.logger.Log(context.Background(), w.level, msg, "from", "library")
	return len(p), nil
}
