package runner

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/agent"
)

// agentYAML is an agent section for tests about the runner: section; it
// sets taskUser: service since per-task (the default) is refused where the
// tests run without root or LocalSystem (Wine).
const agentYAML = `rootURL: https://tc.example.com
credentials: {clientId: c, accessToken: t}
taskQueueId: lab/win11
workerGroup: mtv
workerId: m1
stateDir: /var/lib/labrunner
tasksDir: /var/lib/labrunner/tasks
taskUser: service
`

func TestConfigDefaultsAndRunnerSection(t *testing.T) {
	ac, rc, err := Parse([]byte(agentYAML + `runner:
  reboot: {afterTasks: 10, maxUptime: 24h, onExitCodes: [67]}
  quarantine: {afterInfraFailures: 5}
  watchdog: {timeout: 0s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if ac.WorkerID != "m1" || rc.Reboot.AfterTasks != 10 || rc.Reboot.MaxUptime.Duration != 24*time.Hour || rc.Reboot.OnExitCodes[0] != 67 {
		t.Errorf("parsed %+v %+v", ac, rc.Reboot)
	}
	if rc.StateFile != filepath.Join("/var/lib/labrunner", "runner-state.json") || rc.Checks.TripAfter != 3 || rc.Checks.ClearAfter != 2 ||
		rc.DrainGrace.Duration != 10*time.Minute || rc.Quarantine.AfterInfraFailures != 5 || rc.Watchdog.Timeout.Duration != 0 || !*rc.Quarantine.MirrorToQueue {
		t.Errorf("defaults %+v", rc)
	}
	if _, rc, err := Parse([]byte(agentYAML)); err != nil || rc.Watchdog.Timeout.Duration != 10*time.Minute {
		t.Errorf("without a runner section: %v %+v", err, rc)
	}
}

func TestConfigListsRunnerAndAgentProblemsTogether(t *testing.T) {
	_, _, err := Parse([]byte(strings.Replace(agentYAML, "workerId: m1", "workerId: ''", 1) + `runner:
  drainGrace: soon
  checks: {tries: -1, dir: /no/such/dir, cpuMaxPercent: 150}
  reboot: {command: [""], bootLoopWindow: -5m}
  bogus: 1
  buildbot: {killGrace: soon}
`))
	var ce *agent.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ConfigError", err)
	}
	all := strings.Join(ce.Problems, "\n")
	for _, want := range []string{"workerId:", "runner.drainGrace: \"soon\"", "runner.checks.tries: -1", "runner.checks.dir: \"/no/such/dir\"",
		"runner.checks.cpuMaxPercent: 150", "runner.reboot.command", "runner.reboot.bootLoopWindow: -5m0s is negative", "bogus",
		"runner.buildbot.killGrace: \"soon\""} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

func TestConfigBuildbotKillGrace(t *testing.T) {
	_, rc, err := Parse([]byte(agentYAML + `runner:
  source: both
  buildbot: {bridgeURL: "https://bridge", builders: [b], killGrace: 250ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Buildbot.KillGrace.Duration != 250*time.Millisecond {
		t.Errorf("runner.buildbot.killGrace = %s, want 250ms", rc.Buildbot.KillGrace.Duration)
	}
}

// TestConfigTyposAreNamedOnce: one typo is one problem, at the line it is
// on, with the key's path and the key that was meant; no Go type names,
// and no knock-on complaint about keys that are in fact set.
func TestConfigTyposAreNamedOnce(t *testing.T) {
	src := agentYAML + `capacty: 1
runner:
  # comments and blank lines do not shift the line numbers

  checks:
    tries: many
    diskFreeMinMB: 1
  reboot:
    afterTasks: 5
  drainGrase: 2s
`
	_, _, err := Parse([]byte(src))
	var ce *agent.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ConfigError", err)
	}
	want := []string{
		"line 9: capacty: unknown key; did you mean capacity? Fix or remove it (see docs/config.md)",
		`line 14: runner.checks.tries: want a whole number, not "many" (see docs/config.md)`,
		"line 18: runner.drainGrase: unknown key; did you mean drainGrace? Fix or remove it (see docs/config.md)",
	}
	if strings.Join(ce.Problems, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(ce.Problems, "\n"), strings.Join(want, "\n"))
	}
}
