package platform

import (
	"strings"
	"testing"
)

func TestParseTaskUserMode(t *testing.T) {
	for in, want := range map[string]TaskUserMode{"": TaskUserPerTask, "service": TaskUserService, "per-task": TaskUserPerTask, "console": TaskUserConsole} {
		if got, err := ParseTaskUserMode(in); err != nil || got != want {
			t.Errorf("ParseTaskUserMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTaskUserMode("root"); err == nil || !strings.Contains(err.Error(), "per-task, console or service") {
		t.Errorf("ParseTaskUserMode(root) = %v; want the modes named", err)
	}
}

// The accounts of two runners (two tasks directories) are told apart, so
// that one's clean-up at start never removes the other's.
func TestTaskUserCommentNamesItsRunner(t *testing.T) {
	a, b := taskUserComment("/var/lib/labrunner/tasks"), taskUserComment("/tmp/other/tasks")
	if a == b || !strings.HasPrefix(a, "labrunner task user ") || len(a) > 48 {
		t.Errorf("comments %q and %q: want distinct, short, labrunner's", a, b)
	}
	if a != taskUserComment("/var/lib/labrunner/tasks") {
		t.Errorf("the comment of one tasks directory changes")
	}
}
