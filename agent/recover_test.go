//go:build unix

package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// leaveRun claims a task as an agent that then vanished would have: the
// run is running, journalled, with its task directory and a log holding
// what it printed.
func leaveRun(t *testing.T, e *env, cfg Config) JournalEntry {
	t.Helper()
	// The queue retries the run once it is resolved; the retry ends at once.
	id := e.createTask(map[string]any{"command": [][]string{{"/bin/true"}}, "maxRunTime": 60})
	var runs []Run
	waitFor(t, "the task claimed", func() bool {
		var err error
		runs, err = e.source().Claim(context.Background(), 1)
		return err == nil && len(runs) == 1
	})
	run := runs[0]
	if run.TaskID() != id {
		t.Fatalf("claimed %s, want %s", run.TaskID(), id)
	}
	dir := filepath.Join(cfg.TasksDir, taskDirPrefix+"1")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The kill came mid-line.
	if err := os.WriteFile(dir+".log", []byte("[labrunner 2026-01-01T00:00:00Z] Task: "+id+"\nprinted-before-the-kill"), 0o600); err != nil {
		t.Fatal(err)
	}
	en := JournalEntry{TaskID: id, RunID: run.RunID(), Credentials: run.Credentials(), TakenUntil: run.TakenUntil(),
		TaskDir: dir, Log: dir + ".log", Expires: time.Time(run.Task().Expires)}
	if err := cfg.Journal.Record(en); err != nil {
		t.Fatal(err)
	}
	return en
}

// isArtifactCall is a createArtifact call or an upload through the proxy.
func isArtifactCall(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/artifacts/")
}

func TestRecoveredLogUploadRetriesTransientErrors(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	if err := os.MkdirAll(cfg.TasksDir, 0o700); err != nil {
		t.Fatal(err)
	}
	left := leaveRun(t, e, cfg)
	var failed int
	var mu sync.Mutex
	e.proxy.setFaults(func(r *http.Request, _ int) fault {
		mu.Lock()
		defer mu.Unlock()
		if isArtifactCall(r) && failed < 3 {
			failed++
			return fault{status: http.StatusServiceUnavailable}
		}
		return fault{}
	})
	restarted := time.Now()
	e.startAgent(cfg)
	expectRun(t, e.waitRun(left.TaskID, 0), "exception", "worker-shutdown")
	e.proxy.setFaults(nil)
	t.Logf("resolved %s after the restart, past %d failed artifact calls", time.Since(restarted).Round(time.Millisecond), failed)
	log := e.artifactContent(left.TaskID, 0, LiveLogName)
	if !strings.Contains(log, "printed-before-the-kill\n[labrunner ") || !strings.Contains(log, "Worker restarted at ") {
		t.Errorf("uploaded log lacks the saved output or the restart line on a line of its own:\n%s", log)
	}
	if failed < 3 {
		t.Errorf("only %d artifact calls failed; the test needs 3", failed)
	}
	expectCleanedUp(t, cfg.Journal, left)
}

func TestRecoveredLogUploadIsBounded(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	cfg := e.config()
	if err := os.MkdirAll(cfg.TasksDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var logs testsvc.LogBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.RecoverUploadFor = time.Second
	left := leaveRun(t, e, cfg)
	e.proxy.setFaults(func(r *http.Request, _ int) fault {
		if isArtifactCall(r) {
			return fault{status: http.StatusInternalServerError}
		}
		return fault{}
	})
	restarted := time.Now()
	e.startAgent(cfg)
	expectRun(t, e.waitRun(left.TaskID, 0), "exception", "worker-shutdown")
	t.Logf("resolved %s after the restart with the queue refusing every artifact (bound %s)", time.Since(restarted).Round(time.Millisecond), cfg.RecoverUploadFor)
	e.proxy.setFaults(nil)
	if n := len(e.proxy.callsMatching(http.MethodPost, "/artifacts/")); n < 2 {
		t.Errorf("%d artifact calls; want the upload retried before giving up", n)
	}
	if !strings.Contains(logs.String(), "could not upload the log of a run left by a previous agent") {
		t.Errorf("no warning about the lost log in the agent's log:\n%s", logs.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	expectCleanedUp(t, cfg.Journal, left)
}

// expectCleanedUp waits until the journal no longer holds the left run and
// checks that its files went with it.
func expectCleanedUp(t *testing.T, j *Journal, left JournalEntry) {
	t.Helper()
	waitFor(t, "the recovered run forgotten", func() bool {
		en, _ := j.Entries()
		for _, e := range en {
			if e.TaskID == left.TaskID && e.RunID == left.RunID {
				return false
			}
		}
		return true
	})
	for _, p := range []string{left.TaskDir, left.Log} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of the recovered run is still there (%v)", p, err)
		}
	}
}
