package devqueue

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"
)

// binding is what a tcqueueevents consumer binds with.
type binding interface {
	RoutingKey() string
	ExchangeName() string
	NewPayloadObject() any
}

// checkMessage asserts that d is on b's exchange, matches b's routing key,
// is valid against the queue's message schema, and decodes into b's type.
func checkMessage(t *testing.T, s *Server, d pulse.Delivery, b binding, schema string) any {
	t.Helper()
	if d.Exchange != b.ExchangeName() {
		t.Fatalf("message on %s, want %s", d.Exchange, b.ExchangeName())
	}
	if !pulse.MatchRoutingKey(b.RoutingKey(), d.RoutingKey) {
		t.Errorf("routing key %s does not match binding %s", d.RoutingKey, b.RoutingKey())
	}
	if msg := s.schemas.validate(schema, d.Body); msg != "" {
		t.Errorf("%s body invalid: %s\n%s", d.Exchange, msg, d.Body)
	}
	v := b.NewPayloadObject()
	dec := json.NewDecoder(strings.NewReader(string(d.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("decode %s into %T: %v", d.Exchange, v, err)
	}
	return v
}

func TestPulseMessages(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	prov, wt := split(tq)
	d := h.def(tq)
	d.Routes = []string{"index.project.build", "notify.email.x"}
	d.Tags = map[string]string{"kind": "build"}
	d.SchedulerID = "sched"
	id := h.create(d)
	c := h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)
	if _, err := rq.CreateArtifact(id, "0", "public/ref", refArtifact(h, "https://example.com/r")); err != nil {
		t.Fatal(err)
	}
	h.s3(rq, id, "public/blob", "text/plain") // s3 artifacts are never announced
	if _, err := rq.ReportCompleted(id, "0"); err != nil {
		t.Fatal(err)
	}

	msgs := h.exchangesFor(id, 5)
	if got := strings.Join(msgs, ","); got != "task-defined,task-pending,task-running,artifact-created,task-completed" {
		t.Fatalf("messages = %s", got)
	}
	ds := h.events.forTask(id)
	prim := fmt.Sprintf("primary.%s.%%s.%%s.%%s.%s.%s.sched.%s._", id, prov, wt, id)
	wantKeys := []string{
		fmt.Sprintf(prim, "_", "_", "_"),
		fmt.Sprintf(prim, "0", "_", "_"),
		fmt.Sprintf(prim, "0", "wg", "w1"),
		fmt.Sprintf(prim, "0", "wg", "w1"),
		fmt.Sprintf(prim, "0", "wg", "w1"),
	}
	for i, dl := range ds[:5] {
		if dl.RoutingKey != wantKeys[i] {
			t.Errorf("%s routing key = %s, want %s", msgs[i], dl.RoutingKey, wantKeys[i])
		}
		cc, _ := dl.Headers["CC"].([]any)
		if len(cc) != 2 || cc[0] != "route.index.project.build" || cc[1] != "route.notify.email.x" {
			t.Errorf("%s CC = %v", msgs[i], dl.Headers["CC"])
		}
	}

	def := checkMessage(t, h.srv, ds[0], tcqueueevents.TaskDefined{RoutingKeyKind: "primary", TaskID: id}, "task-defined-message.yml").(*tcqueueevents.TaskDefinedMessage)
	if def.Status.State != "unscheduled" || def.Version != 1 {
		t.Errorf("task-defined = %+v", def)
	}
	pend := checkMessage(t, h.srv, ds[1], tcqueueevents.TaskPending{RoutingKeyKind: "primary", TaskID: id, RunID: "0", ProvisionerID: prov, WorkerType: wt}, "task-pending-message.yml").(*tcqueueevents.TaskPendingMessage)
	if pend.Status.State != "pending" || pend.RunID != 0 {
		t.Errorf("task-pending = %+v", pend)
	}
	var tags struct {
		Task struct {
			Tags map[string]string `json:"tags"`
		} `json:"task"`
	}
	_ = json.Unmarshal(ds[1].Body, &tags)
	if tags.Task.Tags["kind"] != "build" {
		t.Errorf("task-pending tags = %v", tags.Task.Tags)
	}
	run := checkMessage(t, h.srv, ds[2], tcqueueevents.TaskRunning{RoutingKeyKind: "primary", TaskID: id, WorkerGroup: "wg", WorkerID: "w1"}, "task-running-message.yml").(*tcqueueevents.TaskRunningMessage)
	if run.TakenUntil != c.TakenUntil || run.WorkerID != "w1" {
		t.Errorf("task-running = %+v, want takenUntil %v", run, c.TakenUntil)
	}
	art := checkMessage(t, h.srv, ds[3], tcqueueevents.ArtifactCreated{RoutingKeyKind: "primary", TaskID: id}, "artifact-created-message.yml").(*tcqueueevents.ArtifactCreatedMessage)
	if art.Artifact.Name != "public/ref" || art.Artifact.StorageType != "reference" || art.WorkerID != "w1" {
		t.Errorf("artifact-created = %+v", art)
	}
	done := checkMessage(t, h.srv, ds[4], tcqueueevents.TaskCompleted{RoutingKeyKind: "primary", TaskID: id, RunID: "0"}, "task-completed-message.yml").(*tcqueueevents.TaskCompletedMessage)
	if done.Status.State != "completed" || done.WorkerGroup != "wg" {
		t.Errorf("task-completed = %+v", done)
	}

	// Failed and exception.
	failed := h.create(h.def(tq))
	c = h.claim(tq, "w2")
	if _, err := h.runQueue(c.Credentials).ReportFailed(failed, "0"); err != nil {
		t.Fatal(err)
	}
	h.exchangesFor(failed, 4)
	fm := checkMessage(t, h.srv, h.events.forTask(failed)[3], tcqueueevents.TaskFailed{TaskID: failed}, "task-failed-message.yml").(*tcqueueevents.TaskFailedMessage)
	if fm.Status.State != "failed" || fm.WorkerID != "w2" {
		t.Errorf("task-failed = %+v", fm)
	}
	canceled := h.create(h.def(tq))
	if _, err := h.q.CancelTask(canceled); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.exchangesFor(canceled, 3), ","); got != "task-defined,task-pending,task-exception" {
		t.Fatalf("cancel messages = %s", got)
	}
	em := checkMessage(t, h.srv, h.events.forTask(canceled)[2], tcqueueevents.TaskException{TaskID: canceled}, "task-exception-message.yml").(*tcqueueevents.TaskExceptionMessage)
	if em.Status.Runs[0].ReasonResolved != "canceled" || em.WorkerID != "" {
		t.Errorf("task-exception = %+v", em)
	}
}

func TestStuckBrokerDoesNotBlockRequests(t *testing.T) {
	stuck := make(chan struct{})
	h := start(t, func(c *Config) { c.Publisher = stuckPublisher(stuck) })
	// Registered after start, so it runs before the server stops.
	t.Cleanup(func() { close(stuck) })
	tq := newQueueID()
	for i := 0; i < 3; i++ {
		id := h.create(h.def(tq))
		c := h.claim(tq, "w1")
		if _, err := h.runQueue(c.Credentials).ReportCompleted(id, "0"); err != nil {
			t.Fatalf("reportCompleted while the broker hangs: %v", err)
		}
	}
}

func TestTaskGroupResolved(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	group := newSlug()
	for i := 0; i < 2; i++ {
		d := h.def(tq)
		d.TaskGroupID = group
		d.SchedulerID = "sched"
		h.create(d)
	}
	first := h.claim(tq, "w1")
	second := h.claim(tq, "w2")
	if _, err := h.runQueue(first.Credentials).ReportCompleted(first.Status.TaskID, "0"); err != nil {
		t.Fatal(err)
	}
	// The second task's messages arrive after the first's resolution.
	if _, err := h.runQueue(second.Credentials).ReportFailed(second.Status.TaskID, "0"); err != nil {
		t.Fatal(err)
	}
	// Wait until everything published has arrived, then count.
	waitFor(t, "all messages", func() bool {
		h.events.mu.Lock()
		defer h.events.mu.Unlock()
		return h.srv.out.handled.Load() == 9 && len(h.events.msgs) == 9
	})
	got := h.events.onExchange("task-group-resolved")
	if len(got) != 1 {
		t.Fatalf("task-group-resolved published %d times, want once", len(got))
	}
	if last := h.events.msgs[8]; last.Exchange != exchangePrefix+"task-group-resolved" {
		t.Errorf("last message is on %s, want task-group-resolved after the resolution", last.Exchange)
	}
	m := checkMessage(t, h.srv, got[0], tcqueueevents.TaskGroupResolved{RoutingKeyKind: "primary", TaskGroupID: group, SchedulerID: "sched"}, "task-group-resolved.yml").(*tcqueueevents.TaskGroupResolvedMessage)
	if m.TaskGroupID != group || m.SchedulerID != "sched" || got[0].RoutingKey != "primary."+group+".sched._" {
		t.Errorf("task-group-resolved = %+v on %s", m, got[0].RoutingKey)
	}
}
