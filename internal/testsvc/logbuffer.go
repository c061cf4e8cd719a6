package testsvc

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// LogBuffer collects log output (a slog handler's, a child process's)
// while the test reads it; writers and readers may run at once.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CountMessage is how many slog text lines have the message msg.
func (b *LogBuffer) CountMessage(msg string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, " msg="+msg+" ") || strings.Contains(line, ` msg="`+msg+`" `) {
			n++
		}
	}
	return n
}

// Logger is a text logger at level writing to b.
func (b *LogBuffer) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level}))
}
