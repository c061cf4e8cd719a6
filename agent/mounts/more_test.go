package mounts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type failingPurges struct{}

func (failingPurges) PurgeRequests(context.Context, time.Time) ([]PurgeRequest, error) {
	return nil, errors.New("purge-cache service: 503")
}

func TestUnreachablePurgeServiceKeepsCachesAndSaysSo(t *testing.T) {
	base := tempDir(t)
	m := newManager(t, base, func(c *Config) { c.Purges = failingPurges{} })
	cache := []Mount{{Kind: WritableCache, CacheName: "kept", Path: "c"}}
	md, _, err := mountAll(t, m, filepath.Join(base, "t1"), cache)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(base, "t1", "c", "x"), []byte("x"), 0o644)
	_ = md.Unmount(false)
	md, l, err := mountAll(t, m, filepath.Join(base, "t2"), cache)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Unmount(false)
	if !strings.Contains(l.String(), "Could not reach the purge-cache service") {
		t.Errorf("log does not say the service was unreachable:\n%s", l)
	}
	if _, err := os.Stat(filepath.Join(base, "t2", "c", "x")); err != nil {
		t.Errorf("the cache was lost when the service was unreachable: %v", err)
	}
}

func TestConcurrentMountsOfOneURLFetchOnce(t *testing.T) {
	srv := newServer(t)
	u := srv.put("/big", []byte(strings.Repeat("x", 1<<20)))
	base := tempDir(t)
	m := newManager(t, base, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			taskDir := filepath.Join(base, fmt.Sprintf("t%d", i))
			_ = os.MkdirAll(taskDir, 0o755)
			md, err := m.Mount(context.Background(), Task{Dir: taskDir, Mounts: []Mount{{Kind: FileMount, Path: "f", Content: &Content{URL: u}}}, Fetcher: &Fetcher{}, Logf: func(string, ...any) {}})
			if err == nil {
				err = md.Unmount(false)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.count("/big"); n != 1 {
		t.Errorf("fetched %d times by 4 concurrent tasks, want once", n)
	}
}

func TestMoveDirAtReplacesOnlyAnEmptyDirectory(t *testing.T) {
	base := tempDir(t)
	root, err := os.OpenRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_ = os.MkdirAll(filepath.Join(base, "src", "sub"), 0o755)
	_ = os.WriteFile(filepath.Join(base, "src", "sub", "f"), []byte("f"), 0o644)
	_ = os.Mkdir(filepath.Join(base, "empty"), 0o755)
	if err := moveDirAt(root, "src", root, "empty"); err != nil {
		t.Fatalf("move onto an empty directory: %v", err)
	}
	if got := readOrFail(t, filepath.Join(base, "empty", "sub", "f")); got != "f" {
		t.Errorf("moved content %q", got)
	}
	_ = os.MkdirAll(filepath.Join(base, "full"), 0o755)
	_ = os.WriteFile(filepath.Join(base, "full", "keep"), []byte("keep"), 0o644)
	if err := moveDirAt(root, "empty", root, "full"); err == nil {
		t.Error("a move onto a non-empty directory succeeded")
	}
	if got := readOrFail(t, filepath.Join(base, "full", "keep")); got != "keep" {
		t.Error("the non-empty directory was changed")
	}
}

func TestCopyDirAtKeepsFilesAndLinks(t *testing.T) {
	base := tempDir(t)
	root, err := os.OpenRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_ = os.MkdirAll(filepath.Join(base, "src", "a", "b"), 0o755)
	_ = os.WriteFile(filepath.Join(base, "src", "a", "b", "f"), []byte("deep"), 0o640)
	links := symlink(filepath.Join("b", "f"), filepath.Join(base, "src", "a", "l")) == nil
	if err := copyDirAt(root, "src", root, "dst"); err != nil {
		t.Fatal(err)
	}
	if got := readOrFail(t, filepath.Join(base, "dst", "a", "b", "f")); got != "deep" {
		t.Errorf("copied %q", got)
	}
	if links {
		if got, err := os.Readlink(filepath.Join(base, "dst", "a", "l")); err != nil || got != filepath.Join("b", "f") {
			t.Errorf("copied link reads %q, %v; want the link itself, b/f", got, err)
		}
	}
}
