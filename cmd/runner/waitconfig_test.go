package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log destination the test reads while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A service installed before enrolment waits, saying so once, until the
// configuration appears; a stop while waiting ends the wait.
func TestWaitForConfigUntilEnrolled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runner.yml")
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan error, 1)
	go func() { done <- waitForConfig(context.Background(), path, 5*time.Millisecond, log) }()
	for !strings.Contains(logs.String(), "not enrolled yet") {
		select {
		case err := <-done:
			t.Fatalf("returned %v before the configuration existed", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		t.Fatalf("returned %v before the configuration existed", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := os.WriteFile(path, []byte("rootURL: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waitForConfig: %v", err)
	}
	if got := logs.String(); strings.Count(got, "not enrolled yet") != 1 || !strings.Contains(got, "configuration found") {
		t.Errorf("logs:\n%s\nwant one waiting line, then the configuration found", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- waitForConfig(ctx, filepath.Join(t.TempDir(), "never.yml"), time.Hour, log) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("stopped while waiting: %v, want context.Canceled", err)
	}
}
