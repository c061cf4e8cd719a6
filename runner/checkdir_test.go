//go:build unix

package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCheck(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func checksConfig(dir string) ChecksConfig {
	return ChecksConfig{Dir: dir, Timeout: Duration{Duration: 5 * time.Second}, Tries: 3, RetryWait: Duration{Duration: time.Millisecond}}
}

func TestCheckDirRunsInNameOrderAndRetriesFromTheFailedCheck(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(t.TempDir(), "order")
	// 20-flaky fails once, then passes; 10-first must not run again.
	writeCheck(t, dir, "20-flaky", `echo 20 >> `+log+`; if [ ! -f `+log+`.seen ]; then touch `+log+`.seen; exit 1; fi`)
	writeCheck(t, dir, "10-first", `echo 10 >> `+log)
	writeCheck(t, dir, "30-last", `echo 30 >> `+log)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeCheck(t, dir, ".hidden", "exit 3")
	v := RunCheckDir(context.Background(), checksConfig(dir), testLogger())
	if v.Verdict != VerdictOK {
		t.Fatalf("verdict %+v", v)
	}
	b, _ := os.ReadFile(log)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != "10 20 20 30" {
		t.Errorf("run order %v, want 10 20 20 30", got)
	}
	if len(v.Results) != 3 || !strings.Contains(v.Results[1].Value, "try 2 of 3") {
		t.Errorf("results %+v", v.Results)
	}
}

func TestCheckDirHaltExitAndExhaustedTries(t *testing.T) {
	for _, tc := range []struct {
		name, body, verdict, output string
	}{
		{"halt", "echo needs a reboot; exit 2", VerdictHalt, "needs a reboot"},
		{"exit", "echo GPU missing >&2; exit 3", VerdictExit, "GPU missing"},
		{"always-retry", "echo flaky; exit 1", VerdictHalt, "still failing after 3 tries"},
		{"timeout", "sleep 30", VerdictHalt, "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCheck(t, dir, "10-ok", "exit 0")
			writeCheck(t, dir, "20-"+tc.name, tc.body)
			writeCheck(t, dir, "30-never", "echo ran > "+filepath.Join(dir, "ran"))
			cfg := checksConfig(dir)
			if tc.name == "timeout" {
				cfg.Timeout.Duration = 100 * time.Millisecond
				cfg.Tries = 1
			}
			v := RunCheckDir(context.Background(), cfg, testLogger())
			if v.Verdict != tc.verdict || v.Check != "20-"+tc.name || !strings.Contains(v.Output, tc.output) {
				t.Errorf("verdict %q check %q output %q; want %q from 20-%s with %q", v.Verdict, v.Check, v.Output, tc.verdict, tc.name, tc.output)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Errorf("a check after the failing one ran")
			}
		})
	}
}

// TestCheckExitQuarantinesUntilChecksPass drives a check's EXIT through
// the control API: the machine is quarantined with the check's output and
// released when the check passes again.
func TestCheckExitQuarantinesUntilChecksPass(t *testing.T) {
	dir, err := os.MkdirTemp("", "lr-checks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeCheck(t, dir, "10-gpu", "exit 0")
	e := newEnv(t, map[string]any{"checks": map[string]any{"dir": dir, "interval": "1h"}})
	rn := e.start(Options{})
	writeCheck(t, dir, "10-gpu", "echo no GPU found; exit 3")
	rep, err := rn.client.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != VerdictExit || rep.Healthy {
		t.Fatalf("report %+v", rep)
	}
	s, _ := rn.client.Status(context.Background())
	if s.Quarantine == nil || s.Quarantine.Source != SourceCheck || !strings.Contains(s.Quarantine.Reason, "no GPU found") {
		t.Fatalf("quarantine %+v", s.Quarantine)
	}
	writeCheck(t, dir, "10-gpu", "exit 0")
	rep, _ = rn.client.Check(context.Background())
	s, _ = rn.client.Status(context.Background())
	if rep.Verdict != VerdictOK || s.Quarantine != nil {
		t.Errorf("after the check passes: verdict %s quarantine %+v", rep.Verdict, s.Quarantine)
	}
	// HALT asks for a reboot.
	writeCheck(t, dir, "10-gpu", "echo driver wedged; exit 2")
	rn.client.Check(context.Background())
	if got := e.waitReboots(1); !strings.Contains(got[0], "check 10-gpu: HALT: driver wedged") {
		t.Errorf("reboot reason %q", got[0])
	}
}

// A check cut short by the caller's context says nothing about the
// machine: the verdict is interrupted, not EXIT.
func TestCheckDirInterruptedIsNotAnExit(t *testing.T) {
	dir := t.TempDir()
	writeCheck(t, dir, "10-slow", "sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	v := RunCheckDir(ctx, checksConfig(dir), testLogger())
	if v.Verdict != VerdictInterrupted || v.Check != "10-slow" {
		t.Errorf("verdict %q check %q output %q; want interrupted from 10-slow", v.Verdict, v.Check, v.Output)
	}
}

// TestStopDuringChecksDoesNotQuarantine stops the runner while its checks
// directory runs after a task: the machine is not quarantined, in the
// state it leaves behind, by a check that the stop cut short.
func TestStopDuringChecksDoesNotQuarantine(t *testing.T) {
	dir, err := os.MkdirTemp("", "lr-checks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	armed, started := filepath.Join(dir, ".armed"), filepath.Join(dir, ".started")
	// Quick at boot; once armed, slow (the check after the task).
	writeCheck(t, dir, "10-slow", "if [ -f "+armed+" ]; then touch "+started+"; sleep 30; fi")
	e := newEnv(t, map[string]any{"checks": map[string]any{"dir": dir, "interval": "1h"}})
	rn := e.start(Options{})
	if err := os.WriteFile(armed, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := e.waitResolved(e.createTask("exit 0")); got != "completed" {
		t.Fatalf("task %s", got)
	}
	waitUntil(t, "the check after the task", func() bool { _, err := os.Stat(started); return err == nil }, func() string { return "" })
	rn.stop(t)
	st, err := NewStateStore(e.rc.StateFile).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Quarantine != nil {
		t.Errorf("quarantined by a check the stop interrupted: %+v", st.Quarantine)
	}
}
