//go:build unix

package agent

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// wrappedLocalRun is a local run seen through a caller's own type, as the
// runner wraps a black-hole canary: it is told where the log is written.
type wrappedLocalRun struct {
	*LocalRun
	mu  sync.Mutex
	log string
}

func (w *wrappedLocalRun) LogOpened(path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = path
}

// A local run (`runner run-task`, a black-hole canary, also when wrapped
// in a type of the runner's) is not journalled: after a crash there is no
// queue run for the next start to resolve, and trying would only fail
// against the queue. A run that asks is told where its log is written
// before its commands start, so that its owner can read it after a
// crash.
func TestLocalRunsAreNotJournalled(t *testing.T) {
	dir := testTempDir(t)
	j, err := OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	tasks := filepath.Join(dir, "tasks")
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: tasks, Journal: j, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The task looks at the journal directory, and for its own log, while
	// it runs.
	cmd := "ls " + filepath.Join(dir, "journal") + " | wc -l"
	payload := []byte(`{"command": [["/bin/sh", "-c", "echo entries: $(` + cmd + `); ls ` + tasks + `"]], "maxRunTime": 30}`)
	bare, err := NewLocalRunAs("canary-task", payload, "")
	if err != nil {
		t.Fatal(err)
	}
	inner, err := NewLocalRunAs("wrapped-canary", payload, "")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := &wrappedLocalRun{LocalRun: inner}
	for _, run := range []Run{bare, wrapped} {
		var out strings.Builder
		if res := a.RunOne(context.Background(), run, &out); res.Resolution != Completed {
			t.Fatalf("%s: %s:\n%s", run.TaskID(), res.Resolution, out.String())
		}
		if !strings.Contains(out.String(), "entries: 0") {
			t.Errorf("%s: the journal held an entry while the local run ran:\n%s", run.TaskID(), out.String())
		}
		if es, err := j.Entries(); err != nil || len(es) != 0 {
			t.Errorf("%s: journal entries after the run: %v %v", run.TaskID(), es, err)
		}
		if run == Run(wrapped) {
			if filepath.Dir(wrapped.log) != tasks || !strings.Contains(out.String(), filepath.Base(wrapped.log)) {
				t.Errorf("the run was told its log is %q; the tasks directory held:\n%s", wrapped.log, out.String())
			}
		}
	}
}
