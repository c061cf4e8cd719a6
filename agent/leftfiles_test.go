package agent

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// firstClaimSource has no work and says when it was first asked.
type firstClaimSource struct {
	once    sync.Once
	claimed chan struct{}
}

func (s *firstClaimSource) Claim(context.Context, int) ([]Run, error) {
	s.once.Do(func() { close(s.claimed) })
	return nil, nil
}

// Task files no journal entry needs (a Buildbot build's, or a run killed
// before it was journalled) are removed when the agent starts; those of a
// run still to be resolved, and files that are not task files, stay.
func TestStartRemovesUnjournalledTaskFiles(t *testing.T) {
	dir := testTempDir(t)
	tasksDir := filepath.Join(dir, "tasks")
	j, err := OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p string, isDir bool) {
		t.Helper()
		if isDir {
			p = filepath.Join(p, "checkout", "build.txt")
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gone := []string{filepath.Join(tasksDir, "task_1"), filepath.Join(tasksDir, "task_1.log"), filepath.Join(tasksDir, "task_2.log")}
	kept := []string{filepath.Join(tasksDir, "task_3"), filepath.Join(tasksDir, "task_3.log"), filepath.Join(tasksDir, "notes.txt"), filepath.Join(tasksDir, "task_4.txt")}
	for _, p := range append(gone, kept...) {
		mk(p, filepath.Ext(p) == "")
	}
	// A run the previous agent journalled and that is not resolved yet
	// (this source cannot resume it): its files wait for the next start.
	if err := j.Record(JournalEntry{TaskID: "t3", TaskDir: kept[0], Log: kept[1], TakenUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	src := &firstClaimSource{claimed: make(chan struct{})}
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: tasksDir, Journal: j, Source: src, Version: "test", Logger: silentLogger, IdlePollWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-src.claimed:
	case <-time.After(time.Minute):
		t.Fatal("the agent did not start claiming")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range gone {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left by an earlier run is still there (%v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
