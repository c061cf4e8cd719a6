package agent

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// runTaskDef runs a local task definition (pool lab/hw) with the given
// scopes and payload, and returns its result and log.
func runTaskDef(t *testing.T, a *Agent, scopes []string, payload map[string]any) (RunResult, string) {
	t.Helper()
	def, err := json.Marshal(map[string]any{"provisionerId": "lab", "workerType": "hw", "taskQueueId": "lab/hw", "scopes": scopes, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	run, err := NewLocalRun(def, "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res := a.RunOne(context.Background(), run, &out)
	return res, out.String()
}

// osGroups puts the task user in a real group for its task only, under
// generic-worker's scope; without the scope the task is malformed-payload
// and the log names the scope.
func TestPerTaskOSGroups(t *testing.T) {
	a, _, _ := perTaskAgent(t)
	group := "lrag" + strings.TrimPrefix(t.Name(), "TestPerTask")[:4]
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v: %s", err, out)
	}
	defer exec.Command("groupdel", group).Run()
	scope := "generic-worker:os-group:lab/hw/" + group
	script := map[string]any{"command": [][]string{{"/bin/sh", "-c", "echo groups: $(id -Gn)"}}, "maxRunTime": 60}

	with := map[string]any{"osGroups": []string{group}}
	for k, v := range script {
		with[k] = v
	}
	res, log := runTaskDef(t, a, []string{scope}, with)
	if res.Resolution.State != StateCompleted || !strings.Contains(log, "groups: ") {
		t.Fatalf("with osGroups and the scope: %s:\n%s", res.Resolution, log)
	}
	name := taskUserOf(t, log)
	if !strings.Contains(log, "groups: "+name+" "+group+"\n") {
		t.Errorf("the task's command was not in %s:\n%s", group, log)
	}
	if out, _ := exec.Command("getent", "group", group).Output(); strings.Contains(string(out), name) {
		t.Errorf("group %s still lists %s after the task: %s", group, name, out)
	}

	res, log = runTaskDef(t, a, []string{scope}, script)
	if res.Resolution.State != StateCompleted || strings.Contains(log, " "+group+"\n") {
		t.Errorf("the next task, without osGroups, is in %s (%s):\n%s", group, res.Resolution, log)
	}

	res, log = runTaskDef(t, a, nil, with)
	if res.Resolution != Exception(ReasonMalformedPayload) || !strings.Contains(log, scope) {
		t.Errorf("osGroups without %s: %s; want exception malformed-payload naming the scope:\n%s", scope, res.Resolution, log)
	}

	with["osGroups"] = []string{"no_such_group_lr"}
	res, log = runTaskDef(t, a, []string{"generic-worker:os-group:lab/hw/*"}, with)
	if res.Resolution != Exception(ReasonMalformedPayload) || !strings.Contains(log, "no_such_group_lr") {
		t.Errorf("osGroups with a group the worker lacks: %s; want malformed-payload naming it:\n%s", res.Resolution, log)
	}
}

// A writable cache made by one task user is written by the next one: the
// cache, moved into each task directory, is given to each task's account.
func TestPerTaskCacheAcrossTaskUsers(t *testing.T) {
	a, _, _ := perTaskAgent(t)
	scopes := []string{"generic-worker:cache:lr-shared"}
	payload := func(script string) map[string]any {
		return map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 60,
			"mounts": []map[string]any{{"cacheName": "lr-shared", "directory": "cache"}}}
	}
	res, log := runTaskDef(t, a, scopes, payload(`mkdir -p cache/sub && echo one > cache/sub/file && echo first-ok`))
	if res.Resolution.State != StateCompleted || !strings.Contains(log, "\nfirst-ok\n") {
		t.Fatalf("first task: %s:\n%s", res.Resolution, log)
	}
	first := taskUserOf(t, log)
	res, log = runTaskDef(t, a, scopes, payload(`cat cache/sub/file && echo two >> cache/sub/file && echo second-ok`))
	if res.Resolution.State != StateCompleted || !strings.Contains(log, "\none\n") || !strings.Contains(log, "\nsecond-ok\n") {
		t.Fatalf("second task could not read and write the first one's cache: %s:\n%s", res.Resolution, log)
	}
	if second := taskUserOf(t, log); second == first {
		t.Errorf("both tasks ran as %s", first)
	}
}
