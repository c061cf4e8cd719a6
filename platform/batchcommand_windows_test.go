//go:build windows

package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runBatchTask runs lines as generic-worker would and returns the exit code
// of each command, stopping at the first failure as generic-worker does.
func runBatchTask(t *testing.T, dir string, env []string, lines []string) []int {
	t.Helper()
	var codes []int
	for i, line := range lines {
		cmd, err := BatchCommand(dir, i, i == len(lines)-1, "TASKID", line)
		if err != nil {
			t.Fatalf("BatchCommand %d: %v", i, err)
		}
		cmd.Env = env
		tree, err := StartProcessTree(cmd)
		if err != nil {
			t.Fatalf("start command %d: %v", i, err)
		}
		code, err := tree.Wait()
		tree.Close()
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		codes = append(codes, code)
		if code != 0 {
			break
		}
	}
	return codes
}

func TestBatchCommandsCarryEnvAndDirectory(t *testing.T) {
	dir := testTempDir(t)
	env := append(os.Environ(), "FROM_PAYLOAD=payload value")
	codes := runBatchTask(t, dir, env, []string{
		`mkdir sub`,
		`cd sub`,
		`set CARRIED=100%% sure ^& more`,
		`echo %FROM_PAYLOAD%> out.txt`,
		`set CARRIED> carried.txt`,
		`exit /b 3`,
		`echo never > never.txt`,
	})
	if len(codes) != 6 || !exitCodeIs(t, codes[5], 3) {
		t.Fatalf("exit codes %v, want five zeros then 3", codes)
	}
	for _, c := range codes[:5] {
		if c != 0 {
			t.Fatalf("exit codes %v, want five zeros then 3", codes)
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "sub", "out.txt"))
	if err != nil {
		t.Fatalf("out.txt not written in the directory a previous command moved to: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "payload value" {
		t.Fatalf("out.txt = %q, want the payload's variable", got)
	}
	carried, err := os.ReadFile(filepath.Join(dir, "sub", "carried.txt"))
	if got := strings.TrimSpace(string(carried)); err != nil || got != "CARRIED=100% sure & more" {
		t.Fatalf("carried.txt = %q, %v; a variable set by one command must reach the next intact", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "never.txt")); err == nil {
		t.Fatal("a command ran after a failing one")
	}
}

func TestBatchCommandExitCodeOfFailingProgram(t *testing.T) {
	codes := runBatchTask(t, testTempDir(t), os.Environ(), []string{`cmd.exe /c exit 7`})
	if len(codes) != 1 || !exitCodeIs(t, codes[0], 7) {
		t.Fatalf("exit codes %v, want [7]", codes)
	}
}

// exitCodeIs checks a command's exit code. Wine 8's cmd.exe `call` sets
// ERRORLEVEL to 1 for any failure of the called batch file, where Windows
// keeps the code, so under Wine only "failed" can be checked.
func exitCodeIs(t *testing.T, got, want int) bool {
	t.Helper()
	if underWine() {
		if got != want {
			t.Logf("under Wine: exit code %d accepted for %d (Wine's call loses the code)", got, want)
		}
		return got != 0
	}
	return got == want
}
