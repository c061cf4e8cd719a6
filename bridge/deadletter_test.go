package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

// A message that cannot be handled is retried a bounded number of times,
// then parked with its error (docs/bridge.md, "Failure stance"); it never
// loops.
func TestDeadLetters(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		ctx := context.Background()
		key := "primary.x.0._._." + e.prov + "." + e.wt + ".-.-._"

		// Permanent: not JSON. Parked at once.
		if err := e.publisher.Publish(ctx, pulse.Outgoing{Exchange: "exchange/taskcluster-queue/v1/task-pending", RoutingKey: key, Body: []byte("{nope")}); err != nil {
			t.Fatal(err)
		}
		// Transient that never clears: a cancel for a task whose injection
		// has not finished (a fresh row without a build request).
		taskID := e.createTask(payload(ignoredBuilder), nil)
		if _, _, err := e.st.Create(ctx, storeNewTask(taskID)); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"version": 1, "status": map[string]any{"taskId": taskID,
			"runs": []map[string]any{{"runId": 0, "state": "exception", "reasonResolved": "canceled"}}}})
		if err := e.publisher.Publish(ctx, pulse.Outgoing{Exchange: "exchange/taskcluster-queue/v1/task-exception", RoutingKey: key, Body: body}); err != nil {
			t.Fatal(err)
		}
		e.waitHandled("task-pending", 1)
		e.waitHandled("task-exception", 1)
		st, err := rb.b.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.DeadLetters != 2 || len(st.LatestDead) != 2 {
			t.Fatalf("dead letters = %d %+v, want 2", st.DeadLetters, st.LatestDead)
		}
		for _, d := range st.LatestDead {
			if d.Error == "" || d.Instance == "" || !strings.HasPrefix(d.Queue, e.cfg.Pulse.QueueBasename+"/") {
				t.Errorf("dead letter %+v lacks its error, instance or queue", d)
			}
		}
		// Both wait in <basename>/dead-letter for an operator.
		parked := map[string]bool{}
		dlq := pulse.ConsumeOptions{Queue: e.cfg.Pulse.QueueBasename + "/dead-letter", Prefetch: 10, MaxLength: deadLetterQueueMax}
		cctx, stop := context.WithCancel(ctx)
		got := make(chan string, 10)
		go func() {
			_ = e.stack.Bus.Consume(cctx, dlq, []pulse.Binding{{Exchange: e.cfg.Pulse.DeadLetterExchange, RoutingKeyPattern: "#"}},
				func(_ context.Context, d pulse.Delivery) { got <- d.RoutingKey; _ = d.Ack() })
		}()
		for len(parked) < 2 {
			select {
			case k := <-got:
				parked[strings.SplitN(k, ".", 2)[0]] = true
			case <-time.After(20 * time.Second):
				t.Fatalf("dead-letter queue holds %v, want a task-pending and a task-exception message", parked)
			}
		}
		stop()
		if !parked["task-pending"] || !parked["task-exception"] {
			t.Errorf("dead-letter queue holds %v, want task-pending and task-exception", parked)
		}
		if n := counterValue(rb.b.metrics.deadLetters); n != 2 {
			t.Errorf("dead letter metric = %v, want 2", n)
		}
		// Acked, not requeued: a following good message is handled and the
		// counts do not grow.
		good := e.createTask(payload(goodBuilder), nil)
		e.waitRow(good)
		if n := e.handled("task-exception"); n != 1 {
			t.Errorf("task-exception handled %d times, want 1 (no redelivery loop)", n)
		}
		if n := counterValue(rb.b.metrics.messages.WithLabelValues("task-pending", "dead-letter")); n != 1 {
			t.Errorf("task-pending dead letters = %v, want 1", n)
		}
	})
}
