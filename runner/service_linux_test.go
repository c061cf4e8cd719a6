package runner

import (
	"slices"
	"testing"
)

func TestServiceConfigRunsTheRunnerWithRestartAlways(t *testing.T) {
	c := ServiceConfig("/usr/local/bin/runner", "/etc/labrunner/runner.yml")
	if c.Name != "labrunner" || c.Executable != "/usr/local/bin/runner" {
		t.Errorf("name %q executable %q", c.Name, c.Executable)
	}
	if want := []string{"run", "--wait-for-config", "--config", "/etc/labrunner/runner.yml"}; !slices.Equal(c.Arguments, want) {
		t.Errorf("arguments %q, want %q", c.Arguments, want)
	}
	if c.Option["Restart"] != "always" {
		t.Errorf("systemd Restart=%v, want always", c.Option["Restart"])
	}
}
