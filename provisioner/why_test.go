package provisioner

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner/client"
)

// whyEnv is a provisioner on a dev queue with pool "hello" (machines idle,
// busy, quarantined and offline) and pool "other", whose one machine would
// fit "hello".
type whyEnv struct {
	*env
	stack *devstack.Stack
	q     *tcqueue.Queue
}

func newWhyEnv(ctx context.Context, t *testing.T) *whyEnv {
	t.Helper()
	e, stack := newDevQueueEnv(ctx, t, func(c *Config, _ *devstack.Stack) { c.Now = time.Now })
	w := &whyEnv{env: e, stack: stack, q: tcqueue.New(&stack.Credentials, stack.RootURL)}
	w.q.Context = ctx
	e.pool("hello", tcPool(devTaskQueue, 0, 6, 0, "windows"))
	e.pool("other", tcPool("labrunner-prov/other", 0, 2, 0, "windows"))
	st := e.srv.store
	now := time.Now()
	add := func(id, pool string, beat *client.HeartbeatRequest) {
		t.Helper()
		m := &MachineRecord{Machine: client.Machine{MachineID: id, PoolID: pool, Facts: winFacts(id), Registered: now.Add(-time.Hour)}, TokenHash: hashToken("lrm_" + id)}
		if err := st.InsertMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		if beat != nil {
			if err := st.Heartbeat(ctx, id, *beat, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("w-idle", "hello", &client.HeartbeatRequest{State: client.StateIdle})
	add("w-busy", "hello", &client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "OtherTaskOtherTaskOthA", RunID: 0}})
	add("w-quar", "hello", &client.HeartbeatRequest{State: client.StateIdle})
	add("w-off", "hello", nil)
	add("w-else", "other", &client.HeartbeatRequest{State: client.StateIdle})
	if _, err := e.admin.Quarantine(ctx, "w-quar", "USB hub resets", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *whyEnv) createTask(queue string, deps ...string) string {
	w.t.Helper()
	id := slugid.Nice()
	now := time.Now()
	_, err := w.q.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: queue, Dependencies: deps,
		Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: "why " + id, Description: "why test", Owner: "test@labrunner.invalid", Source: "https://github.com/labrunner/labrunner"},
		Payload:  json.RawMessage(`{"command":[["true"]],"maxRunTime":60}`),
	})
	if err != nil {
		w.t.Fatalf("create task: %v", err)
	}
	return id
}

func (w *whyEnv) why(taskID string) *client.WhyAnswer {
	w.t.Helper()
	a, err := w.admin.WhyTask(w.ctx(), taskID)
	if err != nil {
		w.t.Fatalf("why %s: %v", taskID, err)
	}
	return a
}

func joined(a *client.WhyAnswer) string { return a.Summary + "\n" + strings.Join(a.Explanation, "\n") }

func TestWhyPendingTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := newWhyEnv(ctx, t)
	task := w.createTask(devTaskQueue)
	a := w.why(task)
	if a.State != "pending" || !strings.Contains(a.Summary, "pending on "+devTaskQueue+" since") {
		t.Fatalf("answer %q (%s)", a.Summary, a.State)
	}
	if !strings.Contains(a.Summary, "4 machines could take it: 1 idle, 1 busy, 1 quarantined, 1 offline") {
		t.Fatalf("summary %q does not count the pool's machines", a.Summary)
	}
	if len(a.Pools) != 1 || a.Pools[0].PoolID != "hello" || a.Pools[0].Via != "task queue "+devTaskQueue {
		t.Fatalf("pools %+v", a.Pools)
	}
	reasons := map[string]client.WhyMachine{}
	for _, m := range a.Pools[0].Machines {
		reasons[m.MachineID] = m
	}
	for id, want := range map[string]string{
		"w-idle": "idle: should claim it", "w-busy": "busy with task OtherTaskOtherTaskOthA/0",
		"w-quar": "USB hub resets", "w-off": "offline: has never sent a heartbeat",
	} {
		if !strings.Contains(reasons[id].Reason, want) {
			t.Errorf("%s: reason %q, want it to say %q", id, reasons[id].Reason, want)
		}
	}
	if len(a.Elsewhere) != 1 || a.Elsewhere[0].MachineID != "w-else" || !strings.Contains(a.Elsewhere[0].Reason, "fits pool hello but is in pool other") {
		t.Fatalf("elsewhere %+v", a.Elsewhere)
	}
	if !strings.Contains(joined(a), "w-quar is quarantined until") || !strings.Contains(joined(a), "1 idle machine of pool hello should claim it") {
		t.Fatalf("explanation lacks the quarantine or the idle machine:\n%s", joined(a))
	}
	if len(a.Runs) != 1 || a.Runs[0].State != "pending" || a.Runs[0].Scheduled == nil {
		t.Fatalf("runs %+v", a.Runs)
	}

	// The same from the dashboard's search box.
	page := (&historyEnv{env: w.env}).page("/dashboard/why?q=" + task)
	for _, want := range []string{"USB hub resets", "fits pool hello but is in pool other", `data-state="pending"`, "idle: should claim it at its next poll", `id="why-q"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("why page lacks %q", want)
		}
	}

	// Nobody serves this queue.
	lonely := w.createTask("labrunner-prov/nobody")
	if a := w.why(lonely); !strings.Contains(a.Summary, "No labrunner pool serves task queue labrunner-prov/nobody") || len(a.Pools) != 0 {
		t.Fatalf("unserved queue: %q", a.Summary)
	}
}

func TestWhyRunningResolvedAndUnscheduled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := newWhyEnv(ctx, t)
	task := w.createTask(devTaskQueue)
	child := w.createTask(devTaskQueue, task)
	a := w.why(child)
	if a.State != "unscheduled" || !strings.Contains(joined(a), "Dependency "+task+" is pending.") {
		t.Fatalf("unscheduled answer:\n%s", joined(a))
	}

	claim, err := w.q.ClaimWork(devTaskQueue, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "labrunner", WorkerID: "w-busy"})
	if err != nil || len(claim.Tasks) != 1 || claim.Tasks[0].Status.TaskID != task {
		t.Fatalf("claim: %v %+v", err, claim)
	}
	a = w.why(task)
	if a.State != "running" || !strings.Contains(a.Summary, "running (run 0) on machine w-busy (pool hello) for") {
		t.Fatalf("running answer %q", a.Summary)
	}
	if !strings.Contains(joined(a), "But w-busy reports task OtherTaskOtherTaskOthA") {
		t.Fatalf("the answer does not notice the machine reports another task:\n%s", joined(a))
	}
	if err := w.srv.store.Heartbeat(ctx, "w-busy", client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: task}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if a = w.why(task); !strings.Contains(joined(a), "w-busy reports it") {
		t.Fatalf("answer once the machine reports the task:\n%s", joined(a))
	}

	if _, err := w.q.ReportCompleted(task, "0"); err != nil {
		t.Fatal(err)
	}
	a = w.why(task)
	if a.State != "completed" || !strings.Contains(a.Summary, "resolved: completed") || len(a.Runs) != 1 || a.Runs[0].MachineID != "w-busy" {
		t.Fatalf("resolved answer %q runs %+v", a.Summary, a.Runs)
	}
	if !strings.Contains(joined(a), "Run 0: completed (completed) on machine w-busy.") {
		t.Fatalf("resolved explanation:\n%s", joined(a))
	}
}

func TestWhyQueryErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := newWhyEnv(ctx, t)
	for _, c := range []struct{ query, field string }{
		{"", "taskId"}, {"taskId=not-a-task", "taskId"}, {"builder=linux-build&build=x", "build"}, {"q=what%3F", "q"},
	} {
		status, ce := w.raw("GET", "/api/v1/why?"+c.query, testAdminToken, "")
		if status != http.StatusBadRequest || ce.Field != c.field {
			t.Errorf("?%s: %d %+v, want 400 naming %s", c.query, status, ce, c.field)
		}
	}
	unknown := slugid.Nice()
	if a := w.why(unknown); a.State != "unknown" || !strings.Contains(a.Summary, "does not know task "+unknown) {
		t.Fatalf("unknown task: %q", a.Summary)
	}
	a, err := w.admin.WhyBuild(ctx, "linux-build", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Summary, "cannot be looked up: no bridge configured") {
		t.Fatalf("build without bridges: %q", a.Summary)
	}
	page := (&historyEnv{env: w.env}).page("/dashboard/why?q=what%3F")
	if !strings.Contains(page, "is neither a taskId") {
		t.Fatal("the why page does not explain a bad query")
	}
}

func TestParseWhyQuery(t *testing.T) {
	for q, want := range map[string]whyQuery{
		"fN1ivKsXTxunRZfgkB2sZQ":       {taskID: "fN1ivKsXTxunRZfgkB2sZQ"},
		" fN1ivKsXTxunRZfgkB2sZQ ":     {taskID: "fN1ivKsXTxunRZfgkB2sZQ"},
		"linux-build #3":               {builder: "linux-build", build: 3},
		"WINNT 10.0 x64 build/12":      {builder: "WINNT 10.0 x64 build", build: 12},
		"OS X 10.15 mozilla-central#0": {builder: "OS X 10.15 mozilla-central", build: 0},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/dashboard/why?q="+url.QueryEscape(q), nil)
		got, aerr := parseWhyQuery(r)
		if aerr != nil || got != want {
			t.Errorf("q=%q: %+v %v, want %+v", q, got, aerr, want)
		}
	}
	for _, q := range []string{"linux-build", "#3", "linux-build #-1", "fN1ivKsXTxunRZfgkB2sZ"} {
		r, _ := http.NewRequest(http.MethodGet, "/dashboard/why?q="+url.QueryEscape(q), nil)
		if _, aerr := parseWhyQuery(r); aerr == nil || aerr.field != "q" {
			t.Errorf("q=%q accepted", q)
		}
	}
}
