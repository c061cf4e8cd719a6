package platform

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/windows/svc/eventlog"
)

// eventID is the one event id the runner uses; the message is the text.
const eventID = 1

// eventLogWriter turns each log record (one Write) into an event whose
// type follows the record's level.
type eventLogWriter struct {
	l *eventlog.Log
}

func serviceLog(name string) (io.WriteCloser, error) {
	l, err := eventlog.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open event log source %s: %w", name, err)
	}
	return &eventLogWriter{l: l}, nil
}

// Write reports one log record as one event.
func (w *eventLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\r\n")
	var err error
	switch {
	case strings.Contains(msg, "level=ERROR"):
		err = w.l.Error(eventID, msg)
	case strings.Contains(msg, "level=WARN"):
		err = w.l.Warning(eventID, msg)
	default:
		err = w.l.Info(eventID, msg)
	}
	if err != nil {
		return 0, fmt.Errorf("write event log: %w", err)
	}
	return len(p), nil
}

// Close closes the event log handle.
func (w *eventLogWriter) Close() error { return w.l.Close() }
