package agent

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigValid(t *testing.T) {
	c, err := ParseConfig([]byte(`
rootURL: https://tc.example.com
credentials: {clientId: worker/lab, accessToken: secret}
provisionerId: lab-hw
workerType: win11
workerGroup: mtv
workerId: machine-01
stateDir: /var/lib/labrunner
tasksDir: /var/lib/labrunner/tasks
pulseURL: amqps://user:pw@pulse.example.com:5671
livelog: {listen: ":60099", publicURL: "http://machine-01.example.com:60099"}
reclaimMargin: 2m
taskUser: service
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskQueueID != "lab-hw/win11" || c.Capacity != 1 || c.ReclaimMargin.Duration != 2*time.Minute {
		t.Errorf("parsed %+v", c)
	}
	if got := c.PulseQueueName(); got != "queue/user/labrunner-mtv-machine-01" {
		t.Errorf("pulse queue %q", got)
	}
}

func TestParseConfigListsEveryProblem(t *testing.T) {
	_, err := ParseConfig([]byte(`
rootURL: tc.example.com
credentials: {clientId: worker/lab}
workerType: win11
workerGroup: "bad group"
capacity: -1
pulseURL: http://pulse
livelog: {listen: "60099"}
killGrace: -5s
`))
	ce, ok := err.(*ConfigError)
	if !ok {
		t.Fatalf("error %v, want *ConfigError", err)
	}
	for _, key := range []string{"rootURL:", "credentials.accessToken:", "provisionerId:", "workerGroup:", "workerId:",
		"capacity:", "stateDir:", "tasksDir:", "pulseURL:", "livelog.listen:", "livelog.publicURL:", "killGrace:"} {
		found := false
		for _, p := range ce.Problems {
			if strings.HasPrefix(p, key) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem reported for %s; got:\n%s", key, ce.Error())
		}
	}
	if strings.Contains(ce.Error(), "credentials.clientId") {
		t.Errorf("clientId is set but reported:\n%s", ce.Error())
	}
}

func TestParseConfigRejectsUnknownKeysAndBadDurations(t *testing.T) {
	_, err := ParseConfig([]byte("rootURL: https://x\nworkerID: typo\nidlePollWait: soon\n"))
	if err == nil {
		t.Fatal("accepted an unknown key")
	}
	msg := err.Error()
	if !strings.Contains(msg, "workerID") || !strings.Contains(msg, "soon") {
		t.Errorf("error does not name the unknown key and the bad duration:\n%s", msg)
	}
}

// taskUser defaults to per-task; a wrong mode is a problem naming the
// key. Whether this account can run the mode is not the config's
// question (agent.New's, at start: TestTaskUserCapabilityIsChecked… in
// the runner package), so the default reads everywhere.
func TestParseConfigTaskUser(t *testing.T) {
	base := "rootURL: https://tc.example.com\ncredentials: {clientId: c, accessToken: a}\ntaskQueueId: lab/hw\nworkerGroup: g\nworkerId: w\nstateDir: /s\ntasksDir: /t\n"
	c, err := ParseConfig([]byte(base))
	if err != nil || c.TaskUser != "per-task" {
		t.Fatalf("default taskUser = %v, %v; want per-task", c, err)
	}
	_, err = ParseConfig([]byte(base + "taskUser: root\n"))
	if err == nil || !strings.Contains(err.Error(), `taskUser: "root" is not a task-user mode; use per-task, console or service`) {
		t.Errorf("taskUser: root gave %v", err)
	}
	for _, mode := range []string{"per-task", "console"} {
		c, err = ParseConfig([]byte(base + "taskUser: " + mode + "\nconsoleUser: ci\n"))
		if err != nil || c.TaskUser != mode {
			t.Errorf("taskUser: %s gave %v, %v", mode, c, err)
		}
	}
	if c, err := ParseConfig([]byte(base + "taskUser: service\n")); err != nil || c.TaskUser != "service" {
		t.Errorf("taskUser: service gave %v, %v", c, err)
	}
}

// taskUserIds names the range of the per-task accounts' uids; a range
// that would meet system accounts or systemd's ids is a problem naming
// the key.
func TestParseConfigTaskUserIDs(t *testing.T) {
	base := "rootURL: https://tc.example.com\ncredentials: {clientId: c, accessToken: a}\ntaskQueueId: lab/hw\nworkerGroup: g\nworkerId: w\nstateDir: /s\ntasksDir: /t\n"
	if c, err := ParseConfig([]byte(base + "taskUserIds: 200000-299999\n")); err != nil || c.TaskUserIDs != "200000-299999" {
		t.Errorf("taskUserIds: 200000-299999 gave %v, %v", c, err)
	}
	_, err := ParseConfig([]byte(base + "taskUserIds: 500-5000\n"))
	if err == nil || !strings.Contains(err.Error(), "taskUserIds: 500-5000: task account ids must lie between 1000") {
		t.Errorf("taskUserIds: 500-5000 gave %v", err)
	}
}
