package devqueue

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
	hawk "github.com/tent/hawk-go"
)

func TestPing(t *testing.T) {
	h := start(t, nil)
	if err := h.anon.Ping(); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
	}{
		{Config{Clients: map[string]string{"r": "t"}, RootClientID: "r"}, "RootURL"},
		{Config{RootURL: "localhost:8080", Clients: map[string]string{"r": "t"}, RootClientID: "r"}, "RootURL"},
		{Config{RootURL: "http://x", Clients: map[string]string{"r": "t"}}, "RootClientID"},
		{Config{RootURL: "http://x", Clients: map[string]string{"r": "t"}, RootClientID: "s"}, "RootClientID"},
		{Config{RootURL: "http://x", Clients: map[string]string{"r": "t"}, RootClientID: "r", PollWait: -time.Second}, "PollWait"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("New(%+v) = %v, want an error naming %s", c.cfg, err, c.field)
		}
	}
}

func TestCreateTaskDefaultsAndGet(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	d := h.def(tq)
	d.Tags = map[string]string{"kind": "build"}
	id := h.create(d)

	task, err := h.anon.Task(id)
	if err != nil {
		t.Fatalf("task: %v", err)
	}
	prov, wt, _ := strings.Cut(tq, "/")
	if task.ProvisionerID != prov || task.WorkerType != wt || task.TaskQueueID != tq {
		t.Errorf("queue fields = %q %q %q, want split of %q", task.ProvisionerID, task.WorkerType, task.TaskQueueID, tq)
	}
	if task.SchedulerID != "-" || task.ProjectID != "none" || task.TaskGroupID != id || task.Priority != "lowest" ||
		task.Retries != 5 || task.Requires != "all-completed" {
		t.Errorf("defaults not applied: %+v", task)
	}
	st := h.status(id)
	if st.State != "pending" || len(st.Runs) != 1 || st.Runs[0].ReasonCreated != "scheduled" || st.RetriesLeft != 5 {
		t.Errorf("status = %+v, want one pending scheduled run with 5 retries", st)
	}

	// Expires defaults to deadline + 1 year (sent without expires).
	raw := h.rawDef(tq, 1)
	delete(raw, "expires")
	id2 := slugid.Nice()
	res, err := h.createRaw(id2, raw)
	if err != nil {
		t.Fatalf("createTask without expires: %v", err)
	}
	deadline := time.Time(raw["deadline"].(tcclient.Time)).UTC().Truncate(time.Millisecond)
	if got := time.Time(res.Status.Expires); !got.Equal(deadline.AddDate(1, 0, 0)) {
		t.Errorf("expires = %v, want deadline+1y = %v", got, deadline.AddDate(1, 0, 0))
	}
	if res.Status.RetriesLeft != 1 {
		t.Errorf("retriesLeft = %d, want 1", res.Status.RetriesLeft)
	}
}

func TestCreateTaskIdempotency(t *testing.T) {
	h := start(t, nil)
	d := h.def(newQueueID())
	id := h.create(d)
	if _, err := h.q.CreateTask(id, d); err != nil {
		t.Fatalf("same body again: %v", err)
	}
	d.Metadata.Name = "another"
	_, err := h.q.CreateTask(id, d)
	expectFailure(t, err, 409, "RequestConflict")
	// Like the real queue, the repeat announces the task again
	// (at-least-once), with the status it had before scheduling.
	got := h.exchangesFor(id, 4)
	if strings.Join(got, ",") != "task-defined,task-pending,task-defined,task-pending" {
		t.Errorf("messages = %v", got)
	}
	var m struct {
		Status tcqueue.TaskStatusStructure `json:"status"`
	}
	if err := json.Unmarshal(h.events.forTask(id)[2].Body, &m); err != nil || m.Status.State != "unscheduled" || len(m.Status.Runs) != 0 {
		t.Errorf("repeated task-defined status = %+v, %v", m.Status, err)
	}
}

func TestCreateTaskValidation(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	now := h.clock.Now()
	cases := []struct {
		name  string
		mod   func(d *tcqueue.TaskDefinitionRequest)
		code  string
		field string
	}{
		{"deadline too far", func(d *tcqueue.TaskDefinitionRequest) {
			d.Deadline = tcclient.Time(now.Add(6 * 24 * time.Hour))
			d.Expires = tcclient.Time(now.Add(30 * 24 * time.Hour))
		}, "InputError", "`deadline` cannot be more than 5 days"},
		{"deadline past", func(d *tcqueue.TaskDefinitionRequest) {
			d.Created = tcclient.Time(now.Add(-10 * time.Minute))
			d.Deadline = tcclient.Time(now.Add(-time.Minute))
		}, "InputError", "`deadline` cannot be in the past"},
		{"created past", func(d *tcqueue.TaskDefinitionRequest) { d.Created = tcclient.Time(now.Add(-20 * time.Minute)) }, "InputError", "`created` cannot be in the past"},
		{"expires before deadline", func(d *tcqueue.TaskDefinitionRequest) { d.Expires = tcclient.Time(now.Add(time.Minute)) }, "InputError", "`expires` cannot be before `deadline`"},
		{"source not a URL", func(d *tcqueue.TaskDefinitionRequest) { d.Metadata.Source = "somewhere" }, "InputValidationError", "/metadata/source"},
		{"uppercase workerType", func(d *tcqueue.TaskDefinitionRequest) { d.TaskQueueID = "prov/Win11" }, "InputValidationError", "/taskQueueId"},
		{"queue mismatch", func(d *tcqueue.TaskDefinitionRequest) { d.ProvisionerID, d.WorkerType = "a", "b" }, "InputError", "taskQueueId must match"},
		{"no queue", func(d *tcqueue.TaskDefinitionRequest) { d.TaskQueueID = "" }, "InputError", "taskQueueId"},
		{"bad priority", func(d *tcqueue.TaskDefinitionRequest) { d.Priority = "urgent" }, "InputValidationError", "/priority"},
		{"missing dependency", func(d *tcqueue.TaskDefinitionRequest) { d.Dependencies = []string{slugid.Nice()} }, "InputError", "non-existing tasks"},
		{"scope with **", func(d *tcqueue.TaskDefinitionRequest) { d.Scopes = []string{"queue:**"} }, "InputError", "scopes must not end with `**`"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := h.def(tq)
			c.mod(d)
			_, err := h.q.CreateTask(slugid.Nice(), d)
			f := expectFailure(t, err, 400, c.code)
			if !strings.Contains(f.Message, c.field) {
				t.Errorf("message does not name %q:\n%s", c.field, f.Message)
			}
			if f.Method != "createTask" {
				t.Errorf("requestInfo.method = %q, want createTask", f.Method)
			}
		})
	}

	// metadata.owner absent altogether (client-go always sends it).
	raw := h.rawDef(tq, 1)
	delete(raw["metadata"].(map[string]string), "owner")
	_, err := h.createRaw(slugid.Nice(), raw)
	f := expectFailure(t, err, 400, "InputValidationError")
	if !strings.Contains(f.Message, "missing property 'owner'") {
		t.Errorf("message does not name owner:\n%s", f.Message)
	}
	// Unknown top-level field.
	raw = h.rawDef(tq, 1)
	raw["colour"] = "blue"
	_, err = h.createRaw(slugid.Nice(), raw)
	f = expectFailure(t, err, 400, "InputValidationError")
	if !strings.Contains(f.Message, "colour") {
		t.Errorf("message does not name the unknown field:\n%s", f.Message)
	}
	// Bad taskId in the path.
	_, err = h.q.CreateTask("not-a-slug", h.def(tq))
	expectFailure(t, err, 400, "InvalidRequestArguments")
}

func TestUnknownTaskIs404(t *testing.T) {
	h := start(t, nil)
	id := slugid.Nice()
	_, err := h.anon.Task(id)
	expectFailure(t, err, 404, "ResourceNotFound")
	_, err = h.anon.Status(id)
	expectFailure(t, err, 404, "ResourceNotFound")
	_, err = h.q.ReclaimTask(id, "0")
	expectFailure(t, err, 404, "ResourceNotFound")
	_, err = h.q.CancelTask(id)
	expectFailure(t, err, 404, "ResourceNotFound")
	_, err = h.q.ReportCompleted(id, "0")
	expectFailure(t, err, 404, "ResourceNotFound")
}

func TestUnknownPathIs404InTaskclusterShape(t *testing.T) {
	h := start(t, nil)
	cd := tcclient.Client(*h.anon)
	_, _, err := (&cd).APICall(nil, "GET", "/no/such/endpoint", new(json.RawMessage), nil)
	expectFailure(t, err, 404, "ResourceNotFound")
}

func TestAuthentication(t *testing.T) {
	h := start(t, nil)
	d := h.def(newQueueID())

	// Missing signature on an authenticated endpoint.
	_, err := h.anon.CreateTask(slugid.Nice(), d)
	expectFailure(t, err, 401, "AuthenticationFailed")

	// Wrong accessToken.
	bad := quick(tcqueue.New(&tcclient.Credentials{ClientID: rootID, AccessToken: "wrong"}, h.url))
	_, err = bad.CreateTask(slugid.Nice(), d)
	expectFailure(t, err, 401, "AuthenticationFailed")

	// Unknown client.
	unknown := quick(tcqueue.New(&tcclient.Credentials{ClientID: "nobody", AccessToken: "x"}, h.url))
	_, err = unknown.CreateTask(slugid.Nice(), d)
	expectFailure(t, err, 401, "AuthenticationFailed")

	// Another configured client works; scopes are not enforced.
	other := quick(tcqueue.New(&tcclient.Credentials{ClientID: "other", AccessToken: "other-secret"}, h.url))
	if _, err := other.CreateTask(slugid.Nice(), d); err != nil {
		t.Fatalf("createTask as another client: %v", err)
	}
	// Endpoints without scopes ignore even a bad signature, as the real queue
	// never authenticates them.
	if err := bad.Ping(); err != nil {
		t.Fatalf("ping with bad credentials: %v", err)
	}
}

// TestSignedPayloadHash signs the body hash, as Taskcluster's other clients
// may (client-go does not), and checks devqueue still verifies and decodes it.
func TestSignedPayloadHash(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	body, err := json.Marshal(h.def(tq))
	if err != nil {
		t.Fatal(err)
	}
	send := func(payload []byte) *http.Response {
		id := newSlug()
		req, err := http.NewRequest(http.MethodPut, h.url+"/api/queue/v1/task/"+id, bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		auth := hawk.NewRequestAuth(req, &hawk.Credentials{ID: rootID, Key: rootToken, Hash: sha256.New}, 0)
		ph := auth.PayloadHash("application/json")
		ph.Write(body) // always the hash of the original body
		auth.SetHash(ph)
		req.Header.Set("Authorization", auth.RequestHeader())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := send(body); resp.StatusCode != 200 {
		t.Fatalf("createTask with a signed payload hash: %s", resp.Status)
	}
	tampered := bytes.Replace(body, []byte(`"test"`), []byte(`"evil"`), 1)
	if resp := send(tampered); resp.StatusCode != 401 {
		t.Fatalf("tampered body with the original hash: %s, want 401", resp.Status)
	}
}

func TestTaskGroupSharesSchedulerID(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	group := newSlug()
	d := h.def(tq)
	d.TaskGroupID, d.SchedulerID = group, "one"
	h.create(d)
	d = h.def(tq)
	d.TaskGroupID, d.SchedulerID = group, "two"
	_, err := h.q.CreateTask(newSlug(), d)
	f := expectFailure(t, err, 409, "RequestConflict")
	if !strings.Contains(f.Message, "schedulerId") {
		t.Errorf("message: %s", f.Message)
	}
}
