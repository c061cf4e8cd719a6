package agent

// A LiveLog is a task's log file that HTTP clients can follow while it grows:
//
//	CreateLiveLog ──Write*──▶ open ──Close──▶ closed
//	                           │               │
//	   GET: send bytes so far, then wait for   GET: send everything, end
//	   the next Write or Close and send more
//
// Readers never buffer the log in memory: each one reads the file from its
// own offset and is only woken by a broadcast when the writer appends, so any
// number of readers costs one read buffer each.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/labrunner/labrunner/platform"
)

// liveLogContentType is what the log is served as, as generic-worker does.
const liveLogContentType = "text/plain; charset=utf-8"

// LiveLog is a task log file that is also served live over HTTP.
type LiveLog struct {
	path string

	mu      sync.Mutex
	file    *os.File
	size    int64
	closed  bool
	changed chan struct{} // closed and replaced on every Write and on Close
}

// CreateLiveLog creates (or truncates) the log file at path.
func CreateLiveLog(path string) (*LiveLog, error) {
	// The log is the runner's until uploaded (platform.PrivateFileMode),
	// whatever the umask or a file left in the way.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, platform.PrivateFileMode)
	if err != nil {
		return nil, fmt.Errorf("create live log: %w", err)
	}
	if err := f.Chmod(platform.PrivateFileMode); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create live log: restrict %s: %w", path, err)
	}
	return &LiveLog{path: path, file: f, changed: make(chan struct{})}, nil
}

// Path is the log file's path, for uploading it once closed.
func (l *LiveLog) Path() string { return l.path }

// Write appends p to the log file and wakes the readers.
func (l *LiveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, fmt.Errorf("write live log %s: %w", l.path, os.ErrClosed)
	}
	n, err := l.file.Write(p)
	l.size += int64(n)
	if n > 0 {
		l.broadcast()
	}
	if err != nil {
		return n, fmt.Errorf("write live log %s: %w", l.path, err)
	}
	return n, nil
}

// Close closes the file; readers send what is left and end their responses.
func (l *LiveLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.broadcast()
	if err := l.file.Close(); err != nil {
		return fmt.Errorf("close live log %s: %w", l.path, err)
	}
	return nil
}

// broadcast wakes every waiting reader; l.mu must be held.
func (l *LiveLog) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// state is what a reader needs to decide its next step.
func (l *LiveLog) state() (size int64, closed bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.closed, l.changed
}

// ServeHTTP streams the log: everything written so far, then new bytes as
// they are written, ending the response when the log is closed.
func (l *LiveLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", liveLogContentType)
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The Taskcluster UI reads live logs from the browser, on another origin.
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	f, err := os.Open(l.path)
	if err != nil {
		http.Error(w, "log not available", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // headers now, so clients see the stream open at once
	buf := make([]byte, 32*1024)
	var off int64
	for {
		size, closed, changed := l.state()
		for off < size {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return // client gone
				}
				off += int64(n)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return
			}
			if n == 0 {
				break
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if closed && off >= size {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// LiveLogServer serves live logs at /log/<id>, where the id is random and
// unguessable: the URL is published in a public artifact, so knowing it is
// the only access control.
type LiveLogServer struct {
	mu   sync.Mutex
	logs map[string]*LiveLog
}

// liveLogPrefix is the URL path prefix of every served log.
const liveLogPrefix = "/log/"

// NewLiveLogServer returns a server with no logs.
func NewLiveLogServer() *LiveLogServer {
	return &LiveLogServer{logs: map[string]*LiveLog{}}
}

// Add serves l and returns its URL path (/log/<id>), to append to the
// server's public base URL.
func (s *LiveLogServer) Add(l *LiveLog) (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("live log id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs[id] = l
	return liveLogPrefix + id, nil
}

// Remove stops serving the log at path (as returned by Add); readers already
// connected finish normally.
func (s *LiveLogServer) Remove(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.logs, strings.TrimPrefix(path, liveLogPrefix))
}

// ServeHTTP routes /log/<id> to its log and answers 404 for anything else.
func (s *LiveLogServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, liveLogPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	l := s.logs[id]
	s.mu.Unlock()
	if l == nil {
		http.NotFound(w, r)
		return
	}
	l.ServeHTTP(w, r)
}
