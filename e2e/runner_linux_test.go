package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/internal/testrunner"
	"github.com/labrunner/labrunner/runner"
)

// A runner whose pool is "both" claims a Buildbot build and a native
// task; its status (JSON and text) names the kind of each run, and for the
// build its builder and build number.
func TestRunnerBothSourcesStatus(t *testing.T) {
	forEachSetup(t, testRunnerBothSourcesStatus)
}

func testRunnerBothSourcesStatus(t *testing.T, su setup) {
	e := newBareEnv(t, su, graphBuilders)
	status := testrunner.Status(testrunner.Start(t, testrunner.Machine{Name: "runner-1", Dir: e.dir,
		Config: map[string]any{
			"rootURL":     e.stack.RootURL,
			"credentials": map[string]string{"clientId": e.stack.Credentials.ClientID, "accessToken": e.stack.Credentials.AccessToken},
			"taskQueueId": e.nativeQ,
			"workerGroup": "lab",
			"workerId":    "runner-1",
		},
		Runner: map[string]any{
			"source":   "both",
			"buildbot": map[string]any{"bridgeURL": e.bridgeURL, "builders": e.builderNames, "logUploadURL": e.logs.srv.URL + "/logs"},
		},
		Options: runner.Options{Logger: e.log}}))

	a := e.createBridged("linux-sleep")
	var live *runner.Status
	waitFor(t, "status to show the running build", func() bool {
		live = status()
		return live != nil && len(live.CurrentTasks) == 1
	})
	cur := live.CurrentTasks[0]
	if cur.Kind != "buildbot" || cur.Buildbot == nil || cur.Buildbot.Builder != "linux-sleep" || cur.Buildbot.BuildNumber != 0 || cur.TaskID != a {
		b, _ := json.Marshal(cur)
		t.Errorf("current task = %s, want the buildbot build 0 of linux-sleep for task %s", b, a)
	}
	var text strings.Builder
	if err := runner.FormatStatus(&text, live); err != nil {
		t.Fatal(err)
	}
	if want := "buildbot linux-sleep #0 (task " + a + " run 0)"; !strings.Contains(text.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, text.String())
	}
	if _, err := e.q.CancelTask(a); err != nil {
		t.Fatal(err)
	}
	e.waitState(a, "exception")

	n := e.createNative()
	e.waitState(n, "completed")
	var s *runner.Status
	waitFor(t, "status to record both runs", func() bool {
		s = status()
		return s != nil && len(s.CurrentTasks) == 0 && len(s.RecentTasks) == 2
	})
	if got := s.RecentTasks[0]; got.Kind != "taskcluster" || got.TaskID != n || got.Buildbot != nil {
		t.Errorf("latest record = %+v, want the native task", got)
	}
	if got := s.RecentTasks[1]; got.Kind != "buildbot" || got.Buildbot == nil || got.Buildbot.Builder != "linux-sleep" {
		t.Errorf("earlier record = %+v, want the build", got)
	}
}
