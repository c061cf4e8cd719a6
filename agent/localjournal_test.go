//go:build unix

package agent

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// A local run (`runner run-task`, a black-hole canary) is not journalled:
// after a crash there is no queue run for the next start to resolve, and
// trying would only fail against the queue.
func TestLocalRunsAreNotJournalled(t *testing.T) {
	dir := testTempDir(t)
	j, err := OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Journal: j, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The task looks at the journal directory while it runs.
	cmd := "ls " + filepath.Join(dir, "journal") + " | wc -l"
	run, err := NewLocalRunAs("canary-task", []byte(`{"command": [["/bin/sh", "-c", "echo entries: $(`+cmd+`)"]], "maxRunTime": 30}`), "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if res := a.RunOne(context.Background(), run, &out); res.Resolution != Completed {
		t.Fatalf("%s:\n%s", res.Resolution, out.String())
	}
	if !strings.Contains(out.String(), "entries: 0") {
		t.Errorf("the journal held an entry while the local run ran:\n%s", out.String())
	}
	if es, err := j.Entries(); err != nil || len(es) != 0 {
		t.Errorf("journal entries after the run: %v %v", es, err)
	}
}
