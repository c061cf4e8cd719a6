//go:build unix

package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// The tasks directory, each task directory and each task log are the
// runner's alone, whatever the umask; a tasks directory left open is
// repaired, and the repair logged.
func TestTaskFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := testTempDir(t)
	tasksDir := filepath.Join(dir, "tasks")
	if err := os.Mkdir(tasksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: tasksDir, Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(tasksDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("tasks directory has mode %04o after start, want 0700", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "repaired the permissions of the tasks directory") || !strings.Contains(logs.String(), "0755 -> 0700") {
		t.Errorf("the repair was not logged:\n%s", logs.String())
	}
	// The task reports the modes of its directory, its temporary directory
	// and its log while it runs.
	run, err := NewLocalRun([]byte(`{"command": [["/bin/sh", "-c", "stat -c 'mode %a' \"$TASK_WORKDIR\" \"$TMPDIR\" \"$TASK_WORKDIR.log\""]], "maxRunTime": 30}`), "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if res := a.RunOne(context.Background(), run, &out); res.Resolution != Completed {
		t.Fatalf("%s:\n%s", res.Resolution, out.String())
	}
	if !strings.Contains(out.String(), "mode 700\nmode 700\nmode 600\n") {
		t.Errorf("task directory, temporary directory and log modes, as the task saw them:\n%s\nwant 700, 700 and 600", out.String())
	}
}
