package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateFileRoundTripLeavesNoTempFiles(t *testing.T) {
	dir := testTempDir(t)
	s := NewStateStore(filepath.Join(dir, "sub", "runner-state.json"))
	st, err := s.Load()
	if err != nil || st.Version != StateVersion || st.TasksTotal != 0 {
		t.Fatalf("missing file: %+v %v", st, err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	st.TasksTotal = 7
	st.Draining = true
	st.Quarantine = &Quarantine{Reason: "r", Source: SourceManual, Until: &until}
	st.RecentTasks = []TaskRecord{{TaskID: "a", Resolution: "completed"}}
	for range 3 {
		if err := s.Save(st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.TasksTotal != 7 || !got.Draining || !got.Quarantine.Until.Equal(until) || got.RecentTasks[0].TaskID != "a" {
		t.Errorf("loaded %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(entries))
	}
}

func TestStateFileCorruptOrNewerIsAClearError(t *testing.T) {
	path := filepath.Join(testTempDir(t), "runner-state.json")
	os.WriteFile(path, []byte("{truncated"), 0o644)
	if _, err := NewStateStore(path).Load(); err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Errorf("corrupt: %v", err)
	}
	os.WriteFile(path, []byte(`{"version": 99}`), 0o644)
	if _, err := NewStateStore(path).Load(); err == nil || !strings.Contains(err.Error(), "upgrade the runner") {
		t.Errorf("newer: %v", err)
	}
}
