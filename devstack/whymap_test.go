package devstack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	bbclient "github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/provisioner/client"
)

const whyBuilder = "WINNT 10 why build"

// TestWhyBridgedTaskAndSystemMap asks the provisioner about a bridged
// task before and after an agent claims its build, by taskId and by
// build number, and reads the system map of the whole devstack.
func TestWhyBridgedTaskAndSystemMap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	builders := filepath.Join(dir, "builders.yaml")
	if err := os.WriteFile(builders, []byte("builders:\n  "+whyBuilder+":\n    maxRunTime: 60\n    steps:\n      - name: build\n        command: [\"true\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{Dir: dir, BuildersFile: builders})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Bridge.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	admin := client.New(s.RootURL, s.AdminToken)
	if _, err := admin.PutPool(ctx, "win-bb", client.PoolSpec{Source: "buildbot", Builders: []string{whyBuilder}, MaxCapacity: 2,
		Constraints: client.Constraints{OS: []string{"windows"}}}); err != nil {
		t.Fatal(err)
	}
	q := tcqueue.New(&s.Credentials, s.RootURL)
	q.Context = ctx
	payload, _ := json.Marshal(map[string]any{"buildername": whyBuilder, "properties": map[string]any{"product": "firefox"}})
	now := time.Now()
	taskID := slugid.Nice()
	if _, err := q.CreateTask(taskID, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: "buildbot-bridge/buildbot-bridge",
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(48 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: "bridged", Description: "a Buildbot build", Owner: "dev@example.com", Source: "https://example.com/"},
		Payload:  payload,
	}); err != nil {
		t.Fatal(err)
	}

	// Pending: the bridge holds a build request nobody has claimed, and
	// the pool of its builder has no machine.
	var a *client.WhyAnswer
	for {
		if a, err = admin.WhyTask(ctx, taskID); err != nil {
			t.Fatal(err)
		}
		if len(a.Bridges) == 1 && a.Bridges[0].View != nil && a.Bridges[0].View.Row != nil && a.Bridges[0].View.Row.State == "queued" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the bridge never reported a queued build request: %+v", a)
		case <-time.After(50 * time.Millisecond):
		}
	}
	text := a.Summary + "\n" + strings.Join(a.Explanation, "\n")
	if a.State != "pending" || len(a.Pools) != 1 || a.Pools[0].PoolID != "win-bb" || a.Pools[0].Via != "builder "+whyBuilder {
		t.Fatalf("pending bridged task: %s\npools %+v", text, a.Pools)
	}
	for _, want := range []string{"waits for a Buildbot build", "not claimed yet", "Pool win-bb has no machine"} {
		if !strings.Contains(text, want) {
			t.Fatalf("answer lacks %q:\n%s", want, text)
		}
	}
	if a.Task == nil || a.Task.Builder != whyBuilder {
		t.Fatalf("task %+v", a.Task)
	}

	// An agent claims the build: the task runs, and its build number
	// leads back to it.
	bb, err := bbclient.New(s.RootURL, bbclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	build, err := bb.Claim(ctx, bbclient.ClaimRequest{WorkerID: "win-7", Builders: []string{whyBuilder}})
	if err != nil || build == nil {
		t.Fatalf("claim: %v %+v", err, build)
	}
	for {
		if a, err = admin.WhyBuild(ctx, whyBuilder, build.BuildNumber); err != nil {
			t.Fatal(err)
		}
		// The queue's run starts when the bridge claims the task; the
		// bridge's own row follows a moment later: wait for both.
		text = a.Summary + "\n" + strings.Join(a.Explanation, "\n")
		if a.State == "running" && strings.Contains(text, "is running and the bridge keeps its claim") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the bridged task never ran with the bridge's row caught up:\n%s", text)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if a.TaskID != taskID || !strings.Contains(text, "claimed by win-7") {
		t.Fatalf("answer by build number:\n%s", text)
	}

	// The system map: every component of the devstack answers.
	m, err := admin.System(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]client.Component{}
	for _, c := range m.Components {
		got[c.Name] = c
	}
	for _, name := range []string{"Taskcluster queue", "Pulse (provisioner)", "bridge devstack", "provisioner database", "bridge DB (bridge devstack)", "SchedulerDB (bridge devstack)"} {
		if got[name].Health != client.HealthOK {
			t.Errorf("%s: %+v, want ok", name, got[name])
		}
	}
	facts := map[string]string{}
	for _, f := range got["bridge devstack"].Facts {
		facts[f.Name] = f.Value
	}
	if facts["Pulse queue/buildbot-bridge/task-pending"] != "1 consumers, 0 waiting" || !strings.HasSuffix(facts["last Pulse message"], "ago") {
		t.Errorf("bridge facts %v", facts)
	}
	if got["Taskcluster queue"].LatencyMS <= 0 {
		t.Errorf("queue probe not timed: %+v", got["Taskcluster queue"])
	}
}
