package runner

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
)

// An account that cannot run per-task users (an administrator's console
// on Windows lacks SeAssignPrimaryTokenPrivilege; a user who is not root
// elsewhere) still reads the configuration, so that `runner status`,
// `runner check` and `runner enroll` work there; the service refuses to
// start with it, naming the fix.
func TestTaskUserCapabilityIsCheckedAtStartNotWhenReadingTheConfig(t *testing.T) {
	if platform.CheckTaskUserMode(platform.TaskUserPerTask) == nil {
		t.Skip("this account can run per-task users: nothing to refuse (Wine and non-root runs test this)")
	}
	dir := testTempDir(t)
	yml := "rootURL: http://127.0.0.1:1\ncredentials: {clientId: c, accessToken: t}\ntaskQueueId: lab/w\nworkerGroup: g\nworkerId: w\n" +
		"stateDir: " + filepath.ToSlash(filepath.Join(dir, "state")) + "\ntasksDir: " + filepath.ToSlash(filepath.Join(dir, "tasks")) + "\n"
	ac, _, err := Parse([]byte(yml))
	if err != nil {
		t.Fatalf("a per-task configuration does not load where per-task cannot run: %v", err)
	}
	if ac.TaskUser != string(platform.TaskUserPerTask) {
		t.Fatalf("taskUser %q, want the per-task default", ac.TaskUser)
	}
	_, err = agent.New(agent.Config{TasksDir: filepath.Join(dir, "tasks"), TaskUser: platform.TaskUserPerTask})
	if !errors.Is(err, platform.ErrTaskUserModeUnsupported) || !strings.Contains(err.Error(), "taskUser: service") {
		t.Errorf("agent.New with per-task where it cannot run = %v, want a refusal naming taskUser: service", err)
	}
}
