//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunVerboseLogsDebugLines: `runner run -v` shows what the runner is
// doing between tasks (each claimWork answer), which info level leaves out.
func TestRunVerboseLogsDebugLines(t *testing.T) {
	e := newCLIEnv(t, nil)
	for _, verbose := range []bool{false, true} {
		args := []string{"run", "--config", e.config}
		if verbose {
			args = append(args, "-v")
		}
		raw, _ := json.Marshal(args)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(raw))
		var out lockedBuffer
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		e.createTask("true")
		want := 1
		if verbose {
			want = 2
		}
		// The runner claims (several claimWork polls: idlePollWait is 10ms)
		// and runs the task.
		waitUntil(t, "the task ran", func() bool {
			code, s := e.status()
			return code == 0 && s != nil && s.Counters.TasksTotal >= want
		})
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		got := strings.Contains(out.String(), `level=DEBUG msg="claimWork answered"`)
		if got != verbose {
			t.Errorf("verbose=%v: debug claimWork lines present=%v; log:\n%s", verbose, got, out.String())
		}
	}
}
