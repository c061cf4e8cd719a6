package pulse

import (
	"context"
	"strings"
	"testing"
)

// A queue declared without a consumer keeps what is routed to it until
// someone consumes it: the dead-letter queue's case.
func TestDeclareQueueParksMessages(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		p, ok := bus.(Parker)
		if !ok {
			t.Fatalf("%T does not implement Parker", bus)
		}
		ex, q := im.exchange(t), im.queue(t)
		ctx := context.Background()
		if err := p.DeclareQueue(ctx, ConsumeOptions{Queue: q}, []Binding{{ex, "parked.#"}}); err != nil {
			t.Fatal(err)
		}
		// Declaring again is harmless.
		if err := p.DeclareQueue(ctx, ConsumeOptions{Queue: q}, []Binding{{ex, "parked.#"}}); err != nil {
			t.Fatalf("second DeclareQueue: %v", err)
		}
		publish(t, bus, ex, "parked.one", "first")
		publish(t, bus, ex, "other", "not routed")
		publish(t, bus, ex, "parked.two", "second")
		c := startConsumer(t, bus, ConsumeOptions{Queue: q, Prefetch: 1}, Binding{ex, "parked.#"})
		for _, want := range []string{"first", "second"} {
			d := c.next(t)
			if string(d.Body) != want {
				t.Errorf("parked message %q, want %q", d.Body, want)
			}
			if err := d.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		for _, bad := range []struct {
			opts     ConsumeOptions
			bindings []Binding
			want     string
		}{
			{ConsumeOptions{}, []Binding{{ex, "#"}}, "Queue is empty"},
			{ConsumeOptions{Queue: q + "-x", Exclusive: true}, []Binding{{ex, "#"}}, "Exclusive"},
			{ConsumeOptions{Queue: q + "-y"}, nil, "no bindings"},
		} {
			if err := p.DeclareQueue(ctx, bad.opts, bad.bindings); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("DeclareQueue(%+v, %v) = %v, want an error about %s", bad.opts, bad.bindings, err, bad.want)
			}
		}
	})
}
