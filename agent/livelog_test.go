package agent

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const liveLogTestDeadline = 10 * time.Second

// streamReader reads an HTTP body in the background, recording what arrived.
type streamReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan error
	resp *http.Response
}

func startReader(t *testing.T, url string) *streamReader {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	r := &streamReader{done: make(chan error, 1), resp: resp}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err == io.EOF {
				r.done <- nil
				return
			}
			if err != nil {
				r.done <- err
				return
			}
		}
	}()
	return r
}

func (r *streamReader) content() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// waitContent polls until the reader has received exactly want.
func (r *streamReader) waitContent(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(liveLogTestDeadline)
	for r.content() != want {
		if time.Now().After(deadline) {
			t.Fatalf("reader has %q, want %q", r.content(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEnd waits for the response body to end and checks what it carried.
func (r *streamReader) waitEnd(t *testing.T, want string) {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("reading stream: %v", err)
		}
	case <-time.After(liveLogTestDeadline):
		t.Fatalf("response did not end; got %d bytes so far", len(r.content()))
	}
	if got := r.content(); got != want {
		t.Fatalf("stream content mismatch: got %d bytes, want %d (first diff near %d)", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func newServedLog(t *testing.T) (*LiveLog, string, *LiveLogServer) {
	t.Helper()
	l, err := CreateLiveLog(filepath.Join(testTempDir(t), "live_backing.log"))
	if err != nil {
		t.Fatalf("CreateLiveLog: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	s := NewLiveLogServer()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	path, err := s.Add(l)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return l, srv.URL + path, s
}

func write(t *testing.T, l *LiveLog, s string) {
	t.Helper()
	if _, err := io.WriteString(l, s); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func TestLiveLogEarlyReaderStreamsUntilClose(t *testing.T) {
	l, url, _ := newServedLog(t)
	r := startReader(t, url)
	if ct := r.resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var want strings.Builder
	for i := range 50 {
		line := fmt.Sprintf("line %d\n", i)
		write(t, l, line)
		want.WriteString(line)
		if i%10 == 0 {
			// The bytes must arrive while the log is still open.
			r.waitContent(t, want.String())
		}
	}
	r.waitContent(t, want.String())
	select {
	case <-r.done:
		t.Fatal("response ended before the log was closed")
	default:
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.waitEnd(t, want.String())
	onDisk, err := os.ReadFile(l.Path())
	if err != nil || string(onDisk) != want.String() {
		t.Fatalf("file content %q, %v", onDisk, err)
	}
}

func TestLiveLogLateReaders(t *testing.T) {
	l, url, _ := newServedLog(t)
	write(t, l, "before\n")
	open := startReader(t, url)
	open.waitContent(t, "before\n")
	write(t, l, "after\n")
	open.waitContent(t, "before\nafter\n")
	l.Close()
	open.waitEnd(t, "before\nafter\n")

	closed := startReader(t, url)
	closed.waitEnd(t, "before\nafter\n")
}

func TestLiveLogConcurrentReadersLargeLog(t *testing.T) {
	l, url, _ := newServedLog(t)
	var readers []*streamReader
	for range 8 {
		readers = append(readers, startReader(t, url))
	}
	// Larger than the read buffer, with content that shows any reordering.
	var want bytes.Buffer
	chunk := make([]byte, 10000)
	for i := range 100 {
		for j := range chunk {
			chunk[j] = byte('a' + (i+j)%26)
		}
		if _, err := l.Write(chunk); err != nil {
			t.Fatalf("Write: %v", err)
		}
		want.Write(chunk)
		if i == 50 {
			readers = append(readers, startReader(t, url))
		}
	}
	l.Close()
	for _, r := range readers {
		r.waitEnd(t, want.String())
	}
}

func TestLiveLogWriteAfterClose(t *testing.T) {
	l, _, _ := newServedLog(t)
	l.Close()
	if _, err := l.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLiveLogServerRouting(t *testing.T) {
	l, url, s := newServedLog(t)
	l.Close()
	base := url[:strings.Index(url, liveLogPrefix)]
	for _, path := range []string{"/log/not-an-id", "/", "/other"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d, want 405", resp.StatusCode)
	}
	s.Remove(url[len(base):])
	resp, err = http.Get(url)
	if err != nil {
		t.Fatalf("GET removed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET removed log: status %d, want 404", resp.StatusCode)
	}
}

func TestLiveLogIDsAreUnguessable(t *testing.T) {
	s := NewLiveLogServer()
	l, err := CreateLiveLog(filepath.Join(testTempDir(t), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, _ := s.Add(l)
	b, _ := s.Add(l)
	if a == b || len(a) < len(liveLogPrefix)+30 {
		t.Fatalf("ids %q and %q are not long random values", a, b)
	}
}

func TestLiveLogReaderDisconnectDoesNotBlockWriter(t *testing.T) {
	l, url, _ := newServedLog(t)
	r := startReader(t, url)
	write(t, l, "x")
	r.waitContent(t, "x")
	r.resp.Body.Close()
	// The writer must keep going regardless of a vanished reader.
	for range 1000 {
		write(t, l, strings.Repeat("y", 1000))
	}
}
