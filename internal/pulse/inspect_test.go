package pulse

import (
	"context"
	"errors"
	"testing"
)

func TestInspectQueue(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		bus := im.connect(t)
		in, ok := bus.(Inspector)
		if !ok {
			t.Fatalf("%s bus does not implement Inspector", im.name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		q, ex := im.queue(t), im.exchange(t)
		if _, err := in.InspectQueue(ctx, q); !errors.Is(err, ErrNoQueue) {
			t.Fatalf("a queue never declared: %v, want ErrNoQueue", err)
		}
		c := startConsumer(t, bus, ConsumeOptions{Queue: q, Prefetch: 1}, Binding{Exchange: ex, RoutingKeyPattern: "#"})
		publishN(t, bus, ex, "a.b", 3)
		c.next(t) // one delivered (prefetch 1, not acked), two ready
		info, err := in.InspectQueue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != q || info.Consumers != 1 || info.Messages != 2 {
			t.Fatalf("with one consumer holding 1 of 3: %+v, want 1 consumer and 2 ready", info)
		}
		c.stop(t)
		if info, err = in.InspectQueue(ctx, q); err != nil || info.Consumers != 0 || info.Messages != 3 {
			t.Fatalf("after the consumer left: %+v %v, want 0 consumers and the 3 messages ready", info, err)
		}
	})
}
