//go:build unix

package runner

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// A runner started over files an older version left open (umask 022)
// makes them private and logs each repair; what it creates is private too.
func TestRunnerRepairsOpenFilesAtStart(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	e := newEnv(t, nil)
	stateDir, tasksDir := e.ac.StateDir, e.ac.TasksDir
	journal := filepath.Join(stateDir, "journal")
	leftDir := filepath.Join(tasksDir, "task_1")
	leftLog := leftDir + ".log"
	for _, d := range []string{journal, leftDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(leftLog, []byte("log of an older run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	linkFile := filepath.Join(stateDir, "provisioner-link.json")
	if err := os.WriteFile(linkFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testsvc.LogBuffer
	rn := e.start(Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	_ = rn

	want := map[string]os.FileMode{
		stateDir: 0o700, journal: 0o700, tasksDir: 0o700, leftDir: 0o700,
		leftLog: 0o600, linkFile: 0o600, e.rc.StateFile: 0o600, filepath.Dir(e.rc.ControlSocket): 0o700,
	}
	for p, m := range want {
		fi, err := os.Stat(p)
		if (p == leftDir || p == leftLog) && errors.Is(err, fs.ErrNotExist) {
			// The agent removes at its start what no journal entry needs:
			// gone is as private as can be (the repair is logged below).
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != m {
			t.Errorf("%s has mode %04o, want %04o", p, fi.Mode().Perm(), m)
		}
	}
	for _, p := range []string{stateDir, journal, tasksDir, leftDir, leftLog, linkFile} {
		if !strings.Contains(logs.String(), "path="+p+" ") {
			t.Errorf("no repair logged for %s:\n%s", p, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "repaired permissions") {
		t.Errorf("no repair line in the runner's log:\n%s", logs.String())
	}
}
