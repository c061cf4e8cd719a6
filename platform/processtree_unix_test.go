//go:build unix

package platform

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testDeadline = 10 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPid waits for a shell to write a pid into path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// alive reports whether pid is a live (not zombie) process. Zombies count as
// gone: this container's init may not reap orphans promptly.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// No /proc (macOS): signal 0 succeeded, so it exists.
		return !os.IsNotExist(err) || !procMounted()
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, "process "+strconv.Itoa(pid)+" to be gone", func() bool { return !alive(pid) })
}

func startSh(t *testing.T, script string) *ProcessTree {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = t.TempDir()
	tree, err := StartProcessTree(cmd)
	if err != nil {
		t.Fatalf("StartProcessTree: %v", err)
	}
	t.Cleanup(func() { _ = tree.Close() })
	return tree
}

func TestKillRemovesGrandchild(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	tree := startSh(t, `sleep 300 & echo $! > `+pidfile+`; wait`)
	grandchild := readPid(t, pidfile)
	if !alive(grandchild) {
		t.Fatalf("grandchild %d not running before Kill", grandchild)
	}
	if err := tree.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	code, err := tree.Wait()
	if err == nil || code != -1 {
		t.Fatalf("Wait after Kill = (%d, %v), want (-1, signal error)", code, err)
	}
	waitGone(t, grandchild)
}

func TestStopInterruptLetsTrapRun(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	marker := filepath.Join(dir, "trapped")
	tree := startSh(t, `trap 'echo yes > `+marker+`; exit 7' TERM
echo $$ > `+ready+`
while :; do sleep 0.05; done`)
	readPid(t, ready)
	if err := tree.Stop(testDeadline); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	code, err := tree.Wait()
	if err != nil || code != 7 {
		t.Fatalf("Wait = (%d, %v), want exit code 7 from the trap", code, err)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "yes\n" {
		t.Fatalf("trap marker = %q, %v; trap handler did not run", b, err)
	}
}

func TestStopKillsTreeIgnoringInterrupt(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	// Ignored signals stay ignored in children, so nothing here obeys TERM.
	tree := startSh(t, `trap '' TERM; sleep 300 & echo $! > `+pidfile+`; wait`)
	grandchild := readPid(t, pidfile)
	if err := tree.Stop(50 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	code, err := tree.Wait()
	if err == nil || code != -1 {
		t.Fatalf("Wait after Stop = (%d, %v), want (-1, killed)", code, err)
	}
	waitGone(t, grandchild)
}

func TestStopAfterMainExitKillsLeftovers(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	// The main process exits at once, leaving a background child in the group.
	tree := startSh(t, `trap '' TERM; sleep 300 & echo $! > `+pidfile)
	grandchild := readPid(t, pidfile)
	if code, err := tree.Wait(); err != nil || code != 0 {
		t.Fatalf("Wait = (%d, %v), want (0, nil)", code, err)
	}
	if !alive(grandchild) {
		t.Fatalf("background child %d died with its parent; test proves nothing", grandchild)
	}
	if err := tree.Stop(50 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitGone(t, grandchild)
}

func TestCloseKillsLeftovers(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	tree := startSh(t, `sleep 300 & echo $! > `+pidfile)
	grandchild := readPid(t, pidfile)
	if _, err := tree.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := tree.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGone(t, grandchild)
	if err := tree.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, want := range []int{0, 1, 3, 255} {
		tree := startSh(t, "exit "+strconv.Itoa(want))
		code, err := tree.Wait()
		if err != nil || code != want {
			t.Errorf("exit %d: Wait = (%d, %v)", want, code, err)
		}
	}
}

func TestKillAfterExitIsHarmless(t *testing.T) {
	tree := startSh(t, "exit 0")
	if _, err := tree.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := tree.Kill(); err != nil {
		t.Fatalf("Kill of an empty group: %v", err)
	}
}

func TestStartMissingCommand(t *testing.T) {
	_, err := StartProcessTree(exec.Command(filepath.Join(t.TempDir(), "no-such-program")))
	if err == nil || !strings.Contains(err.Error(), "no-such-program") {
		t.Fatalf("StartProcessTree(missing) error = %v, want one naming the program", err)
	}
}
