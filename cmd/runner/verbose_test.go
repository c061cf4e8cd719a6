//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

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
		var out testsvc.LogBuffer
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
