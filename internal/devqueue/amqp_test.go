package devqueue

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"
)

// TestPulseOverRabbitMQ publishes through a real broker and receives with
// the bindings tcqueueevents builds, as a bridge or provisioner would.
func TestPulseOverRabbitMQ(t *testing.T) {
	url := testsvc.AMQPURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := pulse.DialAMQP(ctx, url, slog.Default())
	if err != nil {
		t.Fatalf("DialAMQP: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	h := start(t, func(c *Config) { c.Publisher = bus })
	tq := newQueueID()
	prov, wt := split(tq)

	var bindings []pulse.Binding
	for _, b := range []binding{
		tcqueueevents.TaskDefined{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt},
		tcqueueevents.TaskPending{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt},
		tcqueueevents.TaskRunning{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt},
		tcqueueevents.ArtifactCreated{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt},
		tcqueueevents.TaskCompleted{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt},
	} {
		bindings = append(bindings, pulse.Binding{Exchange: b.ExchangeName(), RoutingKeyPattern: b.RoutingKey()})
	}
	var mu sync.Mutex
	var got []pulse.Delivery
	ready := make(chan struct{})
	var once sync.Once
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(cctx, pulse.ConsumeOptions{
			Queue:     "queue/devqueue-test/" + testsvc.Unique(),
			Exclusive: true,
			Prefetch:  1,
			Ready:     func() { once.Do(func() { close(ready) }) },
		}, bindings, func(_ context.Context, d pulse.Delivery) {
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
			_ = d.Ack()
		})
	}()
	t.Cleanup(func() { ccancel(); <-done })
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("consumer never became ready")
	}

	d := h.def(tq)
	d.Routes = []string{"index.devqueue.test"}
	id := h.create(d)
	c := h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)
	if _, err := rq.CreateArtifact(id, "0", "public/ref", refArtifact(h, "https://example.com/r")); err != nil {
		t.Fatal(err)
	}
	if _, err := rq.ReportCompleted(id, "0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "five messages from RabbitMQ", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 5
	})
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, dl := range got {
		names = append(names, strings.TrimPrefix(dl.Exchange, exchangePrefix))
		var m struct {
			Version int `json:"version"`
			Status  struct {
				TaskID string `json:"taskId"`
			} `json:"status"`
		}
		if err := json.Unmarshal(dl.Body, &m); err != nil || m.Status.TaskID != id || m.Version != 1 {
			t.Errorf("message %s: %s (%v)", dl.Exchange, dl.Body, err)
		}
	}
	if want := "task-defined,task-pending,task-running,artifact-created,task-completed"; strings.Join(names, ",") != want {
		t.Errorf("messages = %v, want %s", names, want)
	}
	completed := got[4]
	v := checkMessage(t, h.srv, completed, tcqueueevents.TaskCompleted{RoutingKeyKind: "primary", TaskID: id, ProvisionerID: prov, WorkerType: wt}, "task-completed-message.yml").(*tcqueueevents.TaskCompletedMessage)
	if v.Status.State != "completed" || v.WorkerID != "w1" {
		t.Errorf("task-completed = %+v", v)
	}
	if cc, _ := completed.Headers["CC"].([]any); len(cc) != 1 || cc[0] != "route.index.devqueue.test" {
		t.Errorf("CC header = %v", completed.Headers["CC"])
	}
}
