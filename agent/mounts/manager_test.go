package mounts

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server serves files by path and counts requests per path.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// failFirst answers 503 to the first n requests of each path.
	failFirst atomic.Int32
}

func newServer(t *testing.T) *server {
	s := &server{files: map[string][]byte{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		n := s.hits[r.URL.Path]
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		switch {
		case n <= int(s.failFirst.Load()):
			http.Error(w, "try again", http.StatusServiceUnavailable)
		case !ok:
			http.NotFound(w, r)
		default:
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) put(p string, b []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = b
	return s.URL + p
}

func (s *server) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newManager(t *testing.T, base string, adjust func(*Config)) *Manager {
	t.Helper()
	cfg := Config{CachesDir: filepath.Join(base, "caches"), DownloadsDir: filepath.Join(base, "downloads")}
	if adjust != nil {
		adjust(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mountAll(t *testing.T, m *Manager, taskDir string, ms []Mount) (*Mounted, *logBuf, error) {
	t.Helper()
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		t.Fatal(err)
	}
	l := &logBuf{}
	md, err := m.Mount(context.Background(), Task{Dir: taskDir, Mounts: ms, Fetcher: &Fetcher{RetryFor: 5 * time.Second}, Logf: l.logf})
	return md, l, err
}

func TestFileAndDirectoryMountsFromURLUseTheDownloadCache(t *testing.T) {
	srv := newServer(t)
	zipBytes := archive(t, Zip, tool)
	u := srv.put("/tool.zip", zipBytes)
	base := tempDir(t)
	m := newManager(t, base, nil)
	ms := []Mount{
		{Kind: ReadOnlyDirectory, Path: "tools/t", Format: Zip, Content: &Content{URL: u, SHA256: digestOf(zipBytes)}},
		{Kind: FileMount, Path: "copy/tool.zip", Content: &Content{URL: u}},
		{Kind: FileMount, Path: "raw.txt", Content: &Content{Raw: "raw text"}},
		{Kind: FileMount, Path: "b64.bin", Content: &Content{Base64: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})}},
	}
	for run := range 2 {
		taskDir := filepath.Join(base, fmt.Sprintf("task%d", run))
		md, l, err := mountAll(t, m, taskDir, ms)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, l)
		}
		if got := readOrFail(t, filepath.Join(taskDir, "tools", "t", "tool", "readme.txt")); got != "readme\n" {
			t.Errorf("run %d: readme = %q", run, got)
		}
		if got := readOrFail(t, filepath.Join(taskDir, "copy", "tool.zip")); got != string(zipBytes) {
			t.Errorf("run %d: file mount differs", run)
		}
		if got := readOrFail(t, filepath.Join(taskDir, "raw.txt")); got != "raw text" {
			t.Errorf("run %d: raw = %q", run, got)
		}
		if got := readOrFail(t, filepath.Join(taskDir, "b64.bin")); got != "\x00\x01\x02\xff" {
			t.Errorf("run %d: base64 content not decoded: %q", run, got)
		}
		if err := md.Unmount(false); err != nil {
			t.Fatal(err)
		}
		if run == 1 && !strings.Contains(l.String(), "Found existing download") {
			t.Errorf("run 1 log does not report the cache hit:\n%s", l)
		}
	}
	if n := srv.count("/tool.zip"); n != 1 {
		t.Errorf("tool.zip fetched %d times, want once for both mounts and both runs", n)
	}

	// Another URL with the same required digest is the same content: no fetch.
	u2 := srv.put("/mirror/tool.zip", zipBytes)
	taskDir := filepath.Join(base, "task-mirror")
	md, l, err := mountAll(t, m, taskDir, []Mount{{Kind: ReadOnlyDirectory, Path: "t", Format: Zip, Content: &Content{URL: u2, SHA256: digestOf(zipBytes)}}})
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	_ = md.Unmount(false)
	if n := srv.count("/mirror/tool.zip"); n != 0 {
		t.Errorf("mirror fetched %d times; the digest was already cached", n)
	}
}

func TestWrongSHA256FailsWithBothDigests(t *testing.T) {
	srv := newServer(t)
	body := []byte("the real content")
	u := srv.put("/f", body)
	base := tempDir(t)
	m := newManager(t, base, nil)
	wrong := strings.Repeat("ab", 32)
	_, l, err := mountAll(t, m, filepath.Join(base, "task"), []Mount{{Kind: FileMount, Path: "f", Content: &Content{URL: u, SHA256: wrong}}})
	var te *TaskError
	if !errors.As(err, &te) {
		t.Fatalf("Mount = %v, want a TaskError\n%s", err, l)
	}
	if !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), digestOf(body)) {
		t.Errorf("error %q does not name the expected %s and the actual %s", err, wrong, digestOf(body))
	}
	if _, err := os.Stat(filepath.Join(base, "task", "f")); err == nil {
		t.Error("the file was mounted despite the wrong digest")
	}
	if files := m.downloads.snapshot(); len(files) != 0 {
		t.Errorf("the mismatching download was kept: %v", files)
	}
}

func TestURLDownloadsRetryTransientErrors(t *testing.T) {
	srv := newServer(t)
	srv.failFirst.Store(2)
	u := srv.put("/f", []byte("finally"))
	base := tempDir(t)
	m := newManager(t, base, nil)
	md, l, err := mountAll(t, m, filepath.Join(base, "task"), []Mount{{Kind: FileMount, Path: "f", Content: &Content{URL: u}}})
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	_ = md.Unmount(false)
	if n := srv.count("/f"); n != 3 {
		t.Errorf("%d requests, want 3 (two 503s, then the content)", n)
	}
	// A 404 is not retried and fails the task.
	srv.failFirst.Store(0)
	_, _, err = mountAll(t, m, filepath.Join(base, "task2"), []Mount{{Kind: FileMount, Path: "g", Content: &Content{URL: srv.URL + "/missing"}}})
	var te *TaskError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Mount of a missing URL = %v, want a TaskError naming the 404", err)
	}
	if n := srv.count("/missing"); n != 1 {
		t.Errorf("404 requested %d times, want 1", n)
	}
}

func TestWritableCachePersistsAcrossTasksAndRestarts(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, nil)
	cache := []Mount{{Kind: WritableCache, CacheName: "build-cache", Path: "cache/build"}}

	md, l, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	if err := os.WriteFile(filepath.Join(base, "t1", "cache", "build", "left.txt"), []byte("from task 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := md.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t1", "cache", "build")); err == nil {
		t.Error("the cache is still in the first task's directory")
	}

	// A restart (a reboot) reads the index again.
	m2 := newManager(t, base, nil)
	md, l, err = mountAll(t, m2, filepath.Join(base, "t2"), cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, l)
	}
	if got := readOrFail(t, filepath.Join(base, "t2", "cache", "build", "left.txt")); got != "from task 1" {
		t.Errorf("second task sees %q", got)
	}
	// While it is taken, another task gets a fresh instance.
	md3, _, err := mountAll(t, m2, filepath.Join(base, "t3"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t3", "cache", "build", "left.txt")); err == nil {
		t.Error("a concurrent task shares the taken cache")
	}
	if err := md3.Unmount(false); err != nil {
		t.Fatal(err)
	}
	if err := md.Unmount(false); err != nil {
		t.Fatal(err)
	}
	// The instance given back last wins: t2's, with left.txt.
	md, _, err = mountAll(t, m2, filepath.Join(base, "t4"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t4", "cache", "build", "left.txt")); err != nil {
		t.Errorf("the last instance given back was not kept: %v", err)
	}
	// Purged by the exit status: the next task starts empty.
	if err := md.Unmount(true); err != nil {
		t.Fatal(err)
	}
	md, _, err = mountAll(t, m2, filepath.Join(base, "t5"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t5", "cache", "build", "left.txt")); err == nil {
		t.Error("the purged cache came back")
	}
	_ = md.Unmount(false)
	if ents, _ := os.ReadDir(filepath.Join(base, "caches")); len(ents) != 2 {
		t.Errorf("caches directory holds %d entries, want the index and one cache", len(ents))
	}
}

func TestPreloadedCacheThatFailsIsNotKept(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, nil)
	bad := []Mount{{Kind: WritableCache, CacheName: "c", Path: "c", Format: TarGz, Content: &Content{Raw: "not a tar.gz"}}}
	if _, _, err := mountAll(t, m, filepath.Join(base, "t1"), bad); err == nil {
		t.Fatal("a corrupt preload mounted")
	}
	if n := len(m.caches.snapshot()); n != 0 {
		t.Errorf("%d caches kept after a failed preload", n)
	}
}

type fakePurges struct {
	reqs  []PurgeRequest
	calls atomic.Int32
	since []time.Time
}

func (f *fakePurges) PurgeRequests(_ context.Context, since time.Time) ([]PurgeRequest, error) {
	f.calls.Add(1)
	f.since = append(f.since, since)
	return f.reqs, nil
}

func TestPurgeRequestsRemoveOlderCaches(t *testing.T) {
	base := tempDir(t)
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	purges := &fakePurges{}
	m := newManager(t, base, func(c *Config) { c.Now = clock; c.Purges = purges })
	cache := []Mount{{Kind: WritableCache, CacheName: "c", Path: "c"}}
	md, _, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(base, "t1", "c", "x"), []byte("x"), 0o644)
	_ = md.Unmount(false)

	// A request from before the cache was made (beyond the 5 minutes of
	// slack) leaves it; one after removes it.
	now = now.Add(time.Hour)
	purges.reqs = []PurgeRequest{{CacheName: "c", Before: now.Add(-2 * time.Hour)}}
	md, l, err := mountAll(t, m, filepath.Join(base, "t2"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t2", "c", "x")); err != nil {
		t.Errorf("an older purge request removed a newer cache: %v\n%s", err, l)
	}
	_ = md.Unmount(false)
	purges.reqs = []PurgeRequest{{CacheName: "c", Before: now}}
	md, l, err = mountAll(t, m, filepath.Join(base, "t3"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "t3", "c", "x")); err == nil {
		t.Errorf("the purge request was not applied\n%s", l)
	}
	if !strings.Contains(l.String(), `Removed writable directory cache "c"`) {
		t.Errorf("log does not say the cache was purged:\n%s", l)
	}
	_ = md.Unmount(false)
	if len(purges.since) != 3 || !purges.since[0].IsZero() || !purges.since[1].Equal(now.Add(-time.Hour-5*time.Minute)) || !purges.since[2].Equal(now.Add(-5*time.Minute)) {
		t.Errorf("since values %v; want zero first, then 5 minutes before the previous query", purges.since)
	}
	// A task without writable caches asks at most every 6 hours.
	calls := purges.calls.Load()
	if _, _, err := mountAll(t, m, filepath.Join(base, "t4"), nil); err != nil {
		t.Fatal(err)
	}
	if purges.calls.Load() != calls {
		t.Error("the service was asked again within 6 hours for a task without caches")
	}
}

func TestEvictionRemovesLeastRecentlyUsedDownloadsThenCaches(t *testing.T) {
	srv := newServer(t)
	base := tempDir(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var free atomic.Uint64
	free.Store(1 << 40)
	var mu sync.Mutex
	var removedOrder []string
	m := newManager(t, base, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
		c.MinFreeBytes = 100
		c.FreeBytes = func(string) (uint64, error) { return free.Load(), nil }
	})
	// Three downloads, used in the order a, b, c, then a again; one cache.
	for _, name := range []string{"a", "b", "c", "a"} {
		u := srv.put("/"+name, []byte("content "+name))
		md, _, err := mountAll(t, m, filepath.Join(base, "t-"+name), []Mount{{Kind: FileMount, Path: "f", Content: &Content{URL: u}}})
		if err != nil {
			t.Fatal(err)
		}
		_ = md.Unmount(false)
	}
	md, _, err := mountAll(t, m, filepath.Join(base, "t-cache"), []Mount{{Kind: WritableCache, CacheName: "keep-me-last", Path: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = md.Unmount(false)

	// Each removal frees "enough" only after b and c have gone.
	m.cfg.FreeBytes = func(string) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		n := uint64(len(m.downloads.snapshot()))
		if n <= 1 {
			return 200, nil
		}
		return 50, nil
	}
	removed, err := m.Evict()
	if err != nil {
		t.Fatal(err)
	}
	removedOrder = removed
	want := []string{digestOf([]byte("content b")), digestOf([]byte("content c"))}
	if len(removedOrder) != 2 || !strings.Contains(removedOrder[0], want[0]) || !strings.Contains(removedOrder[1], want[1]) {
		t.Fatalf("evicted %v, want b then c (least recently used first)", removedOrder)
	}
	if len(m.caches.snapshot()) != 1 {
		t.Error("a cache was evicted while downloads were enough")
	}

	// Still short: everything idle goes, downloads before the cache.
	m.cfg.FreeBytes = func(string) (uint64, error) { return 50, nil }
	removed, err = m.Evict()
	if err == nil {
		t.Error("Evict reported success with the disk still short")
	}
	if len(removed) != 2 || !strings.Contains(removed[0], "download") || !strings.Contains(removed[1], "keep-me-last") {
		t.Errorf("evicted %v, want the last download, then the cache", removed)
	}
}

func TestEvictionSparesContentInUse(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, func(c *Config) {
		c.MinFreeBytes = 100
		c.FreeBytes = func(string) (uint64, error) { return 50, nil }
	})
	md, _, err := mountAll(t, m, filepath.Join(base, "t"), []Mount{{Kind: FileMount, Path: "f", Content: &Content{Raw: "in use"}}})
	if err != nil {
		t.Fatal(err)
	}
	if removed, _ := m.Evict(); len(removed) != 0 {
		t.Errorf("evicted %v while a task uses it", removed)
	}
	_ = md.Unmount(false)
	if removed, _ := m.Evict(); len(removed) != 1 {
		t.Errorf("evicted %v after the task, want the one download", removed)
	}
}

func TestDownloadIndexRebuiltWhenCorrupt(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, nil)
	md, _, err := mountAll(t, m, filepath.Join(base, "t"), []Mount{{Kind: FileMount, Path: "f", Content: &Content{Raw: "kept"}}})
	if err != nil {
		t.Fatal(err)
	}
	_ = md.Unmount(false)
	if err := os.WriteFile(filepath.Join(base, "downloads", "downloads.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, base, nil)
	if _, ok := m2.downloads.snapshot()[digestOf([]byte("kept"))]; !ok {
		t.Error("the cached file was not adopted into the rebuilt index")
	}
}
