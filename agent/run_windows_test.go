//go:build windows

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"

	"golang.org/x/sys/windows"
)

// underWine reports whether the tests run under Wine.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func TestCmdLinesRunInSequenceWithState(t *testing.T) {
	dir := testTempDir(t)
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(dir, "tasks"), Version: "test", KeepTaskDirs: true})
	if err != nil {
		t.Fatal(err)
	}
	run, err := NewLocalRun([]byte(`{"command": ["set GREETING=bonjour", "echo %GREETING% %TASK_ID%> out.txt", "exit /b 4"], "maxRunTime": 60,
		"artifacts": [{"type": "file", "path": "out.txt", "name": "public/out.txt"}]}`), filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res := a.RunOne(context.Background(), run, &log)
	// Wine 8's cmd.exe `call` turns any failing code into 1 (see
	// platform/batchcommand_windows_test.go); Windows keeps it.
	if res.Resolution != Failed || (res.TaskExitCode() != 4 && !(underWine() && res.TaskExitCode() == 1)) {
		t.Fatalf("result %+v (exit %d), want failed with exit code 4; log:\n%s", res, res.TaskExitCode(), log.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "artifacts", "public", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "bonjour "+run.TaskID() {
		t.Errorf("out.txt = %q: the environment set by command 0 did not reach command 1", got)
	}
}
