package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// runAsAdministrator is the payload's fault in console mode, whatever the
// console's account; the other modes leave it to the OS.
func TestConsoleModeRefusesElevation(t *testing.T) {
	elevated := &Payload{RunAsAdministrator: true}
	err := refuseConsoleElevation(platform.TaskUserConsole, elevated)
	var perr *taskUserPayloadError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), "payload.features.runAsAdministrator") || !strings.Contains(err.Error(), "taskUser: per-task") {
		t.Errorf("console mode with runAsAdministrator: %v; want a payload error naming the field and per-task", err)
	}
	for _, c := range []struct {
		mode platform.TaskUserMode
		spec *Payload
	}{{platform.TaskUserConsole, &Payload{}}, {platform.TaskUserPerTask, elevated}, {platform.TaskUserService, elevated}} {
		if err := refuseConsoleElevation(c.mode, c.spec); err != nil {
			t.Errorf("mode %s, runAsAdministrator %v: %v; want no refusal here", c.mode, c.spec.RunAsAdministrator, err)
		}
	}
}
