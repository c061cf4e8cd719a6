//go:build unix

package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	bbclient "github.com/labrunner/labrunner/bridge/client"
)

// A cancelled build whose steps ignore the interrupt is killed after the
// Buildbot source's grace, not the agent's: the agent's is a minute here,
// so only the build's own can end the tree in time.
func TestCancelledBuildKilledAfterItsGrace(t *testing.T) {
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), KillGrace: time.Minute, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the CANCELLED finish fails at once (its
	// error log is discarded).
	silent := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := bbclient.New("http://127.0.0.1:1", bbclient.Options{RetryMax: -1, Logger: silent})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewBBSource(BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", Logger: silent})
	if err != nil {
		t.Fatal(err)
	}
	shellFile, childFile := filepath.Join(dir, "shell.pid"), filepath.Join(dir, "child.pid")
	script := fmt.Sprintf(`trap '' INT TERM; sleep 300 & echo $! > %q; echo $$ > %q; wait`, childFile, shellFile)
	r, err := s.newRun(&bbclient.Build{BuildID: 7, BuildNumber: 3, BuilderName: "b", TaskID: "T",
		Steps: []bbclient.Step{{Command: []string{"sh", "-c", script}}}, MaxRunTime: 600})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.KillGrace(); got != DefaultBuildKillGrace {
		t.Errorf("build's KillGrace = %s, want the default %s", got, DefaultBuildKillGrace)
	}
	done := make(chan RunResult, 1)
	go func() { done <- a.RunOne(context.Background(), r, nil) }()
	shell, child := readPid(t, shellFile), readPid(t, childFile)

	cancelled := time.Now()
	close(r.cancelled) // what the heartbeat does when the bridge says cancelled
	waitFor(t, "the build's process tree gone", func() bool { return !alive(shell) && !alive(child) })
	gone := time.Since(cancelled)
	// The bound is the grace (0.5 s); 1.5 s more absorbs a loaded 2-core
	// machine under -race. The agent's grace (a minute) is far beyond it.
	if limit := DefaultBuildKillGrace + 1500*time.Millisecond; gone > limit {
		t.Errorf("tree gone %s after the cancel, want within %s", gone, limit)
	}
	res := <-done
	if res.Reported {
		t.Errorf("a cancelled build was reported as %s", res.Resolution)
	}
}
