package platform

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestParseTaskUserMode(t *testing.T) {
	for in, want := range map[string]TaskUserMode{"": TaskUserService, "service": TaskUserService, "per-task": TaskUserPerTask, "console": TaskUserConsole} {
		if got, err := ParseTaskUserMode(in); err != nil || got != want {
			t.Errorf("ParseTaskUserMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTaskUserMode("root"); err == nil || !strings.Contains(err.Error(), "per-task, console or service") {
		t.Errorf("ParseTaskUserMode(root) = %v; want the modes named", err)
	}
}

// service runs everywhere; console nowhere yet; per-task where the OS has
// task users (Linux), and elsewhere the refusal names the OS.
func TestCheckTaskUserMode(t *testing.T) {
	if err := CheckTaskUserMode(TaskUserService); err != nil {
		t.Errorf("service refused: %v", err)
	}
	notYet := "not supported yet on " + runtime.GOOS
	if err := CheckTaskUserMode(TaskUserConsole); !errors.Is(err, ErrTaskUserModeUnsupported) || !strings.Contains(err.Error(), notYet) {
		t.Errorf("console: %v; want %q", err, notYet)
	}
	err := CheckTaskUserMode(TaskUserPerTask)
	switch {
	case runtime.GOOS == "linux" && err != nil:
		t.Errorf("per-task refused on Linux: %v", err)
	case runtime.GOOS != "linux" && (!errors.Is(err, ErrTaskUserModeUnsupported) || !strings.Contains(err.Error(), notYet)):
		t.Errorf("per-task on %s: %v; want %q", runtime.GOOS, err, notYet)
	}
	if runtime.GOOS != "linux" {
		if _, err := NewTaskUser(); !errors.Is(err, ErrTaskUserModeUnsupported) {
			t.Errorf("NewTaskUser on %s: %v; want not supported", runtime.GOOS, err)
		}
	}
}
