package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/runner"
)

// The text status names each current run's kind, and for a Buildbot build
// its builder and build number beside the task and run.
func TestStatusTextNamesKindAndBuild(t *testing.T) {
	s := &runner.Status{Service: runner.ServiceStatus{Running: true}, State: runner.PhaseRunning, CurrentTasks: []runner.CurrentTaskStatus{
		{CurrentTask: runner.CurrentTask{TaskID: "AAAAAAAAQ4SycxHllX8vsw", RunID: 0, Kind: "buildbot",
			Buildbot: &agent.BuildInfo{Builder: "linux-sleep", BuildNumber: 3, BuildRequestID: 12}}, ElapsedSeconds: 12},
		{CurrentTask: runner.CurrentTask{TaskID: "BBBBBBBBQ4SycxHllX8vsw", RunID: 1, Kind: "taskcluster"}, ElapsedSeconds: 192},
		{CurrentTask: runner.CurrentTask{TaskID: "CCCCCCCCQ4SycxHllX8vsw", RunID: 2}, ElapsedSeconds: 1},
	}}
	var out bytes.Buffer
	if err := printStatus(&out, s, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "current task"); ok {
			got = append(got, strings.TrimSpace(rest))
		}
	}
	want := []string{
		"buildbot linux-sleep #3 (task AAAAAAAAQ4SycxHllX8vsw run 0), 12s elapsed",
		"taskcluster BBBBBBBBQ4SycxHllX8vsw run 1, 3m12s elapsed",
		// A state written before runs had a kind: all were Taskcluster's.
		"taskcluster CCCCCCCCQ4SycxHllX8vsw run 2, 1s elapsed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("current task lines:\n%s\nwant:\n%s\nin:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}
