package provisioner

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openHandles counts this process's file descriptors open on path.
func openHandles(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// A configuration refused after New opened the database itself (from
// Config.DB) leaves no handle on it behind: a service that retries its
// start, or a test that builds many, does not leak a database per try.
func TestNewClosesTheStoreItOpenedWhenRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "prov.db")
	cfg := Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DashboardSecret: "short"}
	for i := 0; i < 3; i++ {
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "dashboardSecret") {
			t.Fatalf("New with a short dashboardSecret = %v, want an error naming it", err)
		}
	}
	if n := openHandles(t, db); n != 0 {
		t.Errorf("%d handles left open on %s after three refused configurations", n, db)
	}
}
