package agent

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// In console mode the commands run as the console's account (a real
// account standing for the autologin one), in a task directory given to
// it; the account is still there after the task, and osGroups is refused
// as malformed-payload since the account is not changed for a task.
func TestConsoleModeRunsAsTheConsoleUser(t *testing.T) {
	a, _, _ := perTaskAgent(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "lrcon" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--create-home", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	defer exec.Command("userdel", "--remove", name).Run()
	a.cfg.TaskUser, a.cfg.ConsoleUser = platform.TaskUserConsole, name
	res, log := runScript(t, a, `echo "who: $(id -un) $USER"; touch "$TASK_WORKDIR/made" && echo wrote; cat `+filepath.Join(filepath.Dir(a.cfg.TasksDir), "state.json")+` || echo refused`)
	if res.Resolution.State != StateCompleted {
		t.Fatalf("resolution %s:\n%s", res.Resolution, log)
	}
	if !strings.Contains(log, "Running as the console's user "+name) || !strings.Contains(log, "\nwho: "+name+" "+name+"\n") || !strings.Contains(log, "\nwrote\n") {
		t.Errorf("the commands did not run as the console's user %s in a directory of theirs:\n%s", name, log)
	}
	if !strings.Contains(log, "Permission denied") || strings.Contains(log, "secret-token") {
		t.Errorf("the console's user read the runner's state file:\n%s", log)
	}
	if _, err := user.Lookup(name); err != nil {
		t.Errorf("the console's account was removed after the task: %v", err)
	}
	def := map[string]any{"command": [][]string{{"/bin/true"}}, "maxRunTime": 60, "osGroups": []string{"audio"}}
	res, log = runTaskDef(t, a, []string{"generic-worker:os-group:lab/hw/audio"}, def)
	if res.Resolution != Exception(ReasonMalformedPayload) || !strings.Contains(log, "taskUser: per-task") {
		t.Errorf("osGroups in console mode: %s; want malformed-payload pointing at per-task:\n%s", res.Resolution, log)
	}
}
