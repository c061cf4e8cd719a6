package pulse

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"
)

func TestRoutingPatternsAndCCKeys(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, other := im.exchange(t), im.exchange(t)
		one := ConsumeOptions{Prefetch: 1}
		qa, qb, qc := one, one, one
		qa.Queue, qb.Queue, qc.Queue = im.queue(t), im.queue(t), im.queue(t)
		a := startConsumer(t, bus, qa, Binding{ex, "a.*"})
		// Overlapping bindings: "a.b" matches both but is queued once.
		b := startConsumer(t, bus, qb, Binding{ex, "#.b"}, Binding{ex, "a.#"})
		c := startConsumer(t, bus, qc, Binding{ex, "route.index.#"})

		publish(t, bus, ex, "a.x", "m1")
		publish(t, bus, ex, "a.b", "m2")
		publish(t, bus, ex, "z.b", "m3", "route.index.foo")
		// Two matching CC keys still make one copy.
		publish(t, bus, ex, "z.z", "m4", "route.index.a", "route.index.c")
		publish(t, bus, ex, "a.x.y", "m5")
		publish(t, bus, ex, "q", "m6")
		publish(t, bus, other, "a.x", "wrong exchange")
		// The sentinel reaches every queue last; with prefetch 1 and FIFO
		// queues, everything routed before it has arrived by then.
		publish(t, bus, ex, "a.s", "end", "route.index.s")

		want := map[*consumer][]string{
			a: {"m1", "m2", "end"},
			b: {"m1", "m2", "m3", "m5", "end"},
			c: {"m3", "m4", "end"},
		}
		for cons, bodies := range want {
			var got []string
			for len(got) == 0 || got[len(got)-1] != "end" {
				d := cons.next(t)
				if d.Exchange != ex {
					t.Errorf("delivery %q has exchange %q, want %q", d.Body, d.Exchange, ex)
				}
				if string(d.Body) == "m3" {
					// The routing key stays the primary key even when a CC
					// key caused the match, and CC travels as a header.
					if d.RoutingKey != "z.b" {
						t.Errorf("m3 routing key %q, want z.b", d.RoutingKey)
					}
					if cc := d.Headers["CC"]; !reflect.DeepEqual(cc, []any{"route.index.foo"}) {
						t.Errorf("m3 CC header %#v, want [route.index.foo]", cc)
					}
				}
				if err := d.Ack(); err != nil {
					t.Fatal(err)
				}
				got = append(got, string(d.Body))
			}
			if !slices.Equal(got, bodies) {
				t.Errorf("queue got %v, want %v", got, bodies)
			}
		}
	})
}

func TestCompetingConsumersShareAQueue(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		ex, q := im.exchange(t), im.queue(t)
		type rec struct {
			who  int
			body string
		}
		got := make(chan rec, 1000)
		for who := range 3 {
			startConsumerWith(t, im.connect(t), ConsumeOptions{Queue: q, Prefetch: 1}, func(_ context.Context, d Delivery) {
				got <- rec{who, string(d.Body)}
				if err := d.Ack(); err != nil {
					t.Errorf("ack: %v", err)
				}
			}, Binding{ex, "#"})
		}
		sent := publishN(t, im.connect(t), ex, "k", 30)
		seen := map[string]int{}
		share := map[int]int{}
		for len(seen) < len(sent) {
			select {
			case r := <-got:
				seen[r.body]++
				share[r.who]++
				if seen[r.body] > 1 {
					t.Fatalf("%s delivered %d times", r.body, seen[r.body])
				}
			case <-time.After(waitLimit):
				t.Fatalf("only %d of %d messages arrived", len(seen), len(sent))
			}
		}
		for who := range 3 {
			if share[who] == 0 {
				t.Errorf("consumer %d got no share: %v", who, share)
			}
		}
	})
}

func TestNackRequeuesOrDrops(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex := im.exchange(t)
		c := startConsumer(t, bus, ConsumeOptions{Queue: im.queue(t), Prefetch: 1}, Binding{ex, "k"})

		publish(t, bus, ex, "k", "again")
		d := c.next(t)
		if d.Redelivered {
			t.Error("first delivery marked redelivered")
		}
		if err := d.Nack(true); err != nil {
			t.Fatal(err)
		}
		d = c.next(t)
		if string(d.Body) != "again" || !d.Redelivered {
			t.Fatalf("after Nack(true) got %q redelivered=%v, want again redelivered=true", d.Body, d.Redelivered)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}

		publish(t, bus, ex, "k", "dropped")
		if d := c.next(t); string(d.Body) != "dropped" {
			t.Fatalf("got %q, want dropped", d.Body)
		} else if err := d.Nack(false); err != nil {
			t.Fatal(err)
		}
		publish(t, bus, ex, "k", "after")
		if body := c.nextAcked(t); body != "after" {
			t.Fatalf("after Nack(false) got %q, want the next message", body)
		}
	})
}

func TestPrefetchBoundsUnackedDeliveries(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, q := im.exchange(t), im.queue(t)
		held := startConsumer(t, bus, ConsumeOptions{Queue: q, Prefetch: 1}, Binding{ex, "k"})
		sent := publishN(t, bus, ex, "k", 5)
		first := held.next(t)
		// The holder is full, so a consumer arriving later must get every
		// other message; had the holder taken more than one, they would be
		// missing here.
		other := startConsumer(t, im.connect(t), ConsumeOptions{Queue: q, Prefetch: 10})
		var rest []string
		for range len(sent) - 1 {
			rest = append(rest, other.nextAcked(t))
		}
		// Handlers run concurrently, so only the set is fixed, not the order.
		slices.Sort(rest)
		if !slices.Equal(append([]string{string(first.Body)}, rest...), sent) {
			t.Errorf("holder got %q and the other consumer %v, want the first and the rest of %v", first.Body, rest, sent)
		}
		if err := first.Ack(); err != nil {
			t.Fatal(err)
		}
		// With its slot free again the holder takes the next one.
		other.stop(t)
		publish(t, bus, ex, "k", "next")
		if body := held.nextAcked(t); body != "next" {
			t.Errorf("holder got %q after acking, want next", body)
		}
	})
}

func TestStoppedConsumerRequeuesUnacked(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, q := im.exchange(t), im.queue(t)
		a := startConsumer(t, bus, ConsumeOptions{Queue: q, Prefetch: 5}, Binding{ex, "k"})
		sent := publishN(t, bus, ex, "k", 2)
		d1 := a.next(t)
		a.next(t)
		a.stop(t)
		if err := d1.Ack(); err == nil {
			t.Error("ack after the consumer stopped succeeded; the message was already requeued")
		}
		b := startConsumer(t, im.connect(t), ConsumeOptions{Queue: q, Prefetch: 5})
		var got []string
		for range 2 {
			d := b.next(t)
			if !d.Redelivered {
				t.Errorf("%q not marked redelivered", d.Body)
			}
			got = append(got, string(d.Body))
			if err := d.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, sent) {
			t.Errorf("requeued %v, want %v", got, sent)
		}
	})
}

func TestQueueKeepsMessagesWithoutConsumer(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, q := im.exchange(t), im.queue(t)
		startConsumer(t, bus, ConsumeOptions{Queue: q}, Binding{ex, "k"}).stop(t)
		publish(t, bus, ex, "k", "kept")
		d := startConsumer(t, im.connect(t), ConsumeOptions{Queue: q}).next(t)
		if string(d.Body) != "kept" || d.Redelivered {
			t.Errorf("got %q redelivered=%v, want kept, first delivery", d.Body, d.Redelivered)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExclusiveQueueVanishesWithConsumer(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, q := im.exchange(t), im.queue(t)
		x := startConsumer(t, bus, ConsumeOptions{Queue: q, Exclusive: true, Prefetch: 1}, Binding{ex, "k"})
		publish(t, bus, ex, "k", "live")
		if body := x.nextAcked(t); body != "live" {
			t.Fatalf("got %q, want live", body)
		}
		x.stop(t)
		publish(t, bus, ex, "k", "lost")
		d := startConsumer(t, bus, ConsumeOptions{Queue: q, Prefetch: 1}, Binding{ex, "k"})
		publish(t, bus, ex, "k", "new")
		if body := d.nextAcked(t); body != "new" {
			t.Errorf("got %q, want new: the exclusive queue should have gone with its consumer", body)
		}

		anon := startConsumer(t, bus, ConsumeOptions{Exclusive: true}, Binding{ex, "k"})
		publish(t, bus, ex, "k", "to-anon")
		if body := anon.nextAcked(t); body != "to-anon" {
			t.Errorf("server-named exclusive queue got %q", body)
		}
	})
}

func TestMaxLengthDropsOldest(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex, q := im.exchange(t), im.queue(t)
		opts := ConsumeOptions{Queue: q, MaxLength: 2, Prefetch: 1}
		startConsumer(t, bus, opts, Binding{ex, "k"}).stop(t)
		publishN(t, bus, ex, "k", 4)
		c := startConsumer(t, bus, opts)
		got := []string{c.nextAcked(t), c.nextAcked(t)}
		publish(t, bus, ex, "k", "later")
		got = append(got, c.nextAcked(t))
		if want := []string{"m02", "m03", "later"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v (oldest dropped)", got, want)
		}
	})
}

func TestHandlersRunConcurrentlyUpToPrefetch(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ex := im.exchange(t)
		var mu sync.Mutex
		inFlight, peak := 0, 0
		release := make(chan struct{})
		entered := make(chan struct{}, 100)
		c := startConsumerWith(t, bus, ConsumeOptions{Queue: im.queue(t), Prefetch: 3}, func(_ context.Context, d Delivery) {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			entered <- struct{}{}
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
			_ = d.Ack()
		}, Binding{ex, "k"})
		publishN(t, bus, ex, "k", 6)
		for range 3 {
			select {
			case <-entered:
			case <-time.After(waitLimit):
				t.Fatal("three handlers did not run at once with prefetch 3")
			}
		}
		close(release)
		for range 3 {
			<-entered
		}
		c.stop(t)
		mu.Lock()
		defer mu.Unlock()
		if peak != 3 {
			t.Errorf("peak concurrent handlers %d, want 3", peak)
		}
	})
}

func TestCloseStopsConsumersAndPublishers(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.fresh(t)
		ex := im.exchange(t)
		c := startConsumerWith(t, bus, ConsumeOptions{Queue: im.queue(t)}, func(_ context.Context, d Delivery) { _ = d.Ack() }, Binding{ex, "k"})
		if err := bus.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.result(t); !errors.Is(err, ErrClosed) {
			t.Errorf("Consume after Close returned %v, want ErrClosed", err)
		}
		if err := bus.Publish(context.Background(), Outgoing{Exchange: ex, RoutingKey: "k"}); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish after Close returned %v, want ErrClosed", err)
		}
	})
}

func TestInvalidInputNamesTheField(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		ctx := context.Background()
		h := func(context.Context, Delivery) {}
		cases := []struct {
			field string
			err   error
		}{
			{"Outgoing.Exchange", bus.Publish(ctx, Outgoing{RoutingKey: "k"})},
			{"ConsumeOptions.Queue", bus.Consume(ctx, ConsumeOptions{}, nil, h)},
			{"ConsumeOptions.Prefetch", bus.Consume(ctx, ConsumeOptions{Queue: "q", Prefetch: -1}, nil, h)},
			{"bindings[0].Exchange", bus.Consume(ctx, ConsumeOptions{Queue: "q"}, []Binding{{RoutingKeyPattern: "#"}}, h)},
			{"handler", bus.Consume(ctx, ConsumeOptions{Queue: "q"}, nil, nil)},
		}
		for _, c := range cases {
			if c.err == nil || !strings.Contains(c.err.Error(), c.field) {
				t.Errorf("error %v does not name %s", c.err, c.field)
			}
		}
	})
}

func TestTaskclusterTaskPendingBinding(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		// The exchange name is Taskcluster's own; the unique provisioner and
		// worker type keep parallel runs from seeing each other's messages.
		prov, wt := "prov-"+testsvc.Unique(), "wt-"+testsvc.Unique()
		binding := tcqueueevents.TaskPending{RoutingKeyKind: "primary", ProvisionerID: prov, WorkerType: wt}
		c := startConsumer(t, bus, ConsumeOptions{Queue: im.queue(t), Exclusive: true, Prefetch: 1},
			Binding{binding.ExchangeName(), binding.RoutingKey()})

		taskID, groupID := "fN1SbArXTPSVFNUvaOlinQ", "Wl0rBQcXRp2Dd3WGuX9vXg"
		body, err := json.Marshal(map[string]any{
			"runId": 0,
			"status": map[string]any{
				"taskId": taskID, "provisionerId": prov, "workerType": wt, "taskQueueId": prov + "/" + wt,
				"schedulerId": "-", "projectId": "none", "taskGroupId": groupID,
				"deadline": "2026-11-27T00:00:00.000Z", "expires": "2027-11-27T00:00:00.000Z",
				"retriesLeft": 5, "state": "pending",
				"runs": []any{map[string]any{"runId": 0, "state": "pending", "reasonCreated": "scheduled", "scheduled": "2026-11-26T21:00:00.000Z"}},
			},
			"version": 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		// The queue's key: kind.taskId.runId.workerGroup.workerId.
		// provisionerId.workerType.schedulerId.taskGroupId.reserved.
		other := "primary." + taskID + ".0._._." + prov + ".other-wt.-." + groupID + "._"
		key := "primary." + taskID + ".0._._." + prov + "." + wt + ".-." + groupID + "._"
		publish(t, bus, binding.ExchangeName(), other, "{}")
		publish(t, bus, binding.ExchangeName(), key, string(body), "route.index.x")

		d := c.next(t)
		if d.RoutingKey != key {
			t.Fatalf("got routing key %q, want %q", d.RoutingKey, key)
		}
		msg := binding.NewPayloadObject().(*tcqueueevents.TaskPendingMessage)
		if err := json.Unmarshal(d.Body, msg); err != nil {
			t.Fatalf("decode TaskPendingMessage: %v", err)
		}
		if msg.Status.TaskID != taskID || msg.Status.WorkerType != wt || msg.Status.ProvisionerID != prov ||
			msg.Status.TaskGroupID != groupID || len(msg.Status.Runs) != 1 || msg.Status.Runs[0].State != "pending" {
			t.Errorf("decoded %+v", msg.Status)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	})
}
