package pulse

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// waitLimit bounds every wait for a message or a state change; it is a
// deadline for a hung test, never a timing assertion.
const waitLimit = 15 * time.Second

// impl is one Bus implementation under the shared behavioural tests.
type impl struct {
	name string
	// connect returns a Bus for the test, closed at cleanup. Calls within
	// one test reach the same broker: AMQP dials a new connection each
	// time, the in-process bus hands out the test's single instance.
	connect func(t *testing.T) Bus
	// fresh returns a Bus the test may close without disturbing others.
	fresh func(t *testing.T) Bus
	// exchange and queue return unique names deleted at cleanup.
	exchange func(t *testing.T) string
	queue    func(t *testing.T) string
}

// implementations lists the Bus implementations that the shared tests
// run against, each building its per-test impl.
var implementations = []struct {
	name  string
	setup func(t *testing.T) impl
}{
	{"inprocess", inProcessImpl},
}

// forEachImpl runs body against every implementation as parallel subtests.
func forEachImpl(t *testing.T, body func(t *testing.T, im impl)) {
	t.Helper()
	for _, f := range implementations {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			body(t, f.setup(t))
		})
	}
}

// inProcessImpl gives each test its own bus, shared by all its connect
// calls as one broker would be.
func inProcessImpl(t *testing.T) impl {
	shared := NewInProcess()
	t.Cleanup(func() { _ = shared.Close() })
	return impl{
		name:    "inprocess",
		connect: func(*testing.T) Bus { return shared },
		fresh: func(t *testing.T) Bus {
			b := NewInProcess()
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		exchange: func(*testing.T) string { return "exchange/labrunner-test/v1/" + testsvc.Unique() },
		queue:    func(*testing.T) string { return "queue/labrunner-test/" + testsvc.Unique() },
	}
}

// consumer is a running Consume call whose deliveries arrive on got.
type consumer struct {
	got    chan Delivery
	cancel context.CancelFunc
	done   chan error
}

// startConsumer runs Consume in the background, passing every delivery to
// the test through got unacknowledged, and waits until the consumer is
// ready. It is stopped at cleanup unless the test stops it first.
func startConsumer(t *testing.T, bus Bus, opts ConsumeOptions, bindings ...Binding) *consumer {
	t.Helper()
	got := make(chan Delivery, 1000)
	c := startConsumerWith(t, bus, opts, func(_ context.Context, d Delivery) { got <- d }, bindings...)
	c.got = got
	return c
}

// startConsumerWith is startConsumer with the test's own handler.
func startConsumerWith(t *testing.T, bus Bus, opts ConsumeOptions, h Handler, bindings ...Binding) *consumer {
	t.Helper()
	ready := make(chan struct{}, 16)
	opts.Ready = func() { ready <- struct{}{} }
	c := &consumer{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- bus.Consume(ctx, opts, bindings, h) }()
	t.Cleanup(func() { cancel(); c.result(t) })
	select {
	case <-ready:
	case <-time.After(waitLimit):
		t.Fatalf("consumer not ready in time (Consume returned %v)", c.result(t))
	}
	return c
}

// result waits for Consume to return and reports what it returned; it may
// be called any number of times.
func (c *consumer) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(waitLimit):
		t.Error("Consume did not return in time")
		return errors.New("Consume did not return")
	}
}

// stop cancels the consumer and checks that Consume returned nil.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	if err := c.result(t); err != nil {
		t.Fatalf("Consume returned %v after cancel, want nil", err)
	}
}

// next waits for the consumer's next delivery.
func (c *consumer) next(t *testing.T) Delivery {
	t.Helper()
	select {
	case d := <-c.got:
		return d
	case <-time.After(waitLimit):
		t.Fatal("no delivery arrived in time")
		return Delivery{}
	}
}

// nextAcked waits for the next delivery, acks it and returns its body.
func (c *consumer) nextAcked(t *testing.T) string {
	t.Helper()
	d := c.next(t)
	if err := d.Ack(); err != nil {
		t.Fatalf("ack %q: %v", d.Body, err)
	}
	return string(d.Body)
}

func publish(t *testing.T, bus Bus, exchange, key string, body string, cc ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := bus.Publish(ctx, Outgoing{Exchange: exchange, RoutingKey: key, CC: cc, Body: []byte(body)}); err != nil {
		t.Fatalf("publish %q with key %q: %v", body, key, err)
	}
}

func publishN(t *testing.T, bus Bus, exchange, key string, n int) []string {
	t.Helper()
	var bodies []string
	for i := range n {
		b := fmt.Sprintf("m%02d", i)
		publish(t, bus, exchange, key, b)
		bodies = append(bodies, b)
	}
	return bodies
}
