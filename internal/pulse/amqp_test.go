package pulse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func TestAMQPConsumerReconnectsAfterForcedClose(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	bus := dialTest(t, testsvc.AMQPURL(t))
	ex := im.exchange(t)
	ready := make(chan struct{}, 8)
	got := make(chan Delivery, 100)
	opts := ConsumeOptions{Queue: im.queue(t), Prefetch: 1, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Ready: func() { ready <- struct{}{} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, opts, []Binding{{ex, "k"}}, func(_ context.Context, d Delivery) { got <- d })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume returned %v after cancel", err)
		}
	}()
	waitReady(t, ready)
	publish(t, bus, ex, "k", "before")
	held := receive(t, got)
	if string(held.Body) != "before" {
		t.Fatalf("got %q, want before", held.Body)
	}

	forceCloseConnections(t, bus)
	waitReady(t, ready) // the consumer set itself up again
	if err := held.Ack(); err == nil {
		t.Error("ack on the lost channel succeeded")
	}
	// The unacked message comes back, then new ones keep flowing.
	d := receive(t, got)
	if string(d.Body) != "before" || !d.Redelivered {
		t.Errorf("after reconnect got %q redelivered=%v, want before redelivered", d.Body, d.Redelivered)
	}
	_ = d.Ack()
	publish(t, bus, ex, "k", "after")
	if d := receive(t, got); string(d.Body) != "after" {
		t.Errorf("got %q, want after", d.Body)
	} else {
		_ = d.Ack()
	}
}

func TestAMQPPublisherRetriesAfterForcedClose(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	u := testsvc.AMQPURL(t)
	ex := im.exchange(t)
	c := startConsumer(t, im.connect(t), ConsumeOptions{Queue: im.queue(t), Prefetch: 1}, Binding{ex, "k"})
	pub := dialTest(t, u)
	publish(t, pub, ex, "k", "first")
	if body := c.nextAcked(t); body != "first" {
		t.Fatalf("got %q", body)
	}
	forceCloseConnections(t, pub)
	// The publisher's channel is dead; Publish must reconnect by itself.
	publish(t, pub, ex, "k", "second")
	if body := c.nextAcked(t); body != "second" {
		t.Fatalf("got %q, want second", body)
	}
}

func TestAMQPConcurrentPublishers(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	ex := im.exchange(t)
	c := startConsumer(t, im.connect(t), ConsumeOptions{Queue: im.queue(t), Prefetch: 50}, Binding{ex, "#"})
	pub := im.connect(t)
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			errs <- pub.Publish(context.Background(), Outgoing{Exchange: ex, RoutingKey: "k", Body: fmt.Appendf(nil, "p%02d", i)})
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 40 {
		got = append(got, c.nextAcked(t))
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if len(got) != 40 {
		t.Errorf("got %d distinct messages, want 40", len(got))
	}
}

func TestAMQPMessagesArePersistentJSONOnDurableTopicExchanges(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	u := testsvc.AMQPURL(t)
	ex, q := im.exchange(t), im.queue(t)
	startConsumer(t, im.connect(t), ConsumeOptions{Queue: q}, Binding{ex, "k"}).stop(t)
	publish(t, im.connect(t), ex, "k", `{"a":1}`)

	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Passive declarations fail (and close the channel) if the type or
	// durability differs from what Pulse expects.
	if err := ch.ExchangeDeclarePassive(ex, "topic", true, false, false, false, nil); err != nil {
		t.Fatalf("exchange is not a durable topic exchange: %v", err)
	}
	if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatalf("queue is not durable: %v", err)
	}
	m, ok, err := ch.Get(q, true)
	if err != nil || !ok {
		t.Fatalf("get from %s: ok=%v err=%v", q, ok, err)
	}
	if m.DeliveryMode != amqp.Persistent || m.ContentType != "application/json" || string(m.Body) != `{"a":1}` {
		t.Errorf("message has mode %d, type %q, body %s", m.DeliveryMode, m.ContentType, m.Body)
	}
}

func TestAMQPSetupErrorsArePermanent(t *testing.T) {
	t.Parallel()
	u := testsvc.AMQPURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	if _, err := DialAMQP(ctx, "http://guest:secret@127.0.0.1/", nil); err == nil || !strings.Contains(err.Error(), "AMQP URL") || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad scheme: got %v, want an error about the URL without the password", err)
	}
	wrong, _ := url.Parse(u)
	wrong.User = url.UserPassword(wrong.User.Username(), "wrong-"+testsvc.Unique())
	_, err := DialAMQP(ctx, wrong.String(), nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Errorf("wrong password: got %v, want ACCESS_REFUSED", err)
	}
	if ctx.Err() != nil {
		t.Error("DialAMQP retried refused credentials until the deadline")
	}
	if err != nil && strings.Contains(err.Error(), "wrong-") {
		t.Errorf("error leaks the password: %v", err)
	}

	// A queue redeclared with other arguments can never be set up.
	im := amqpImpl(t)
	q, ex := im.queue(t), im.exchange(t)
	startConsumer(t, im.connect(t), ConsumeOptions{Queue: q, MaxLength: 5}, Binding{ex, "k"}).stop(t)
	err = im.connect(t).Consume(ctx, ConsumeOptions{Queue: q, MaxLength: 7}, nil, func(context.Context, Delivery) {})
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Errorf("conflicting MaxLength: got %v, want PRECONDITION_FAILED", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://user:s3cret@host:5672/vhost": "amqp://user:xxxxx@host:5672/vhost",
		"amqps://host/":                      "amqps://host/",
		"amqp://user:s3cret@ho st/":          "(unparseable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMatchRoutingKeyAgreesWithRabbitMQ checks the in-process matcher's
// table against the broker itself, so the table cannot encode a mistaken
// reading of RabbitMQ's rules.
func TestMatchRoutingKeyAgreesWithRabbitMQ(t *testing.T) {
	t.Parallel()
	u := testsvc.AMQPURL(t)
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ex := "exchange/labrunner-test/v1/" + testsvc.Unique()
	if err := declareExchange(ch, ex); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.ExchangeDelete(ex, false, false) }()
	for i, c := range routingKeyCases {
		// Server-named exclusive queues vanish with the connection.
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q.Name, c.pattern, ex, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish(ex, c.key, false, false, amqp.Publishing{Body: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
		// Publishing to the queue directly puts a marker after the routed
		// message (if any) on the same channel, so one Get tells them apart.
		if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("marker")}); err != nil {
			t.Fatal(err)
		}
		var m amqp.Delivery
		for ok := false; !ok; {
			if m, ok, err = ch.Get(q.Name, true); err != nil {
				t.Fatal(err)
			}
		}
		if routed := string(m.Body) != "marker"; routed != c.want {
			t.Errorf("RabbitMQ routes key %q to pattern %q: %v; the table says %v", c.key, c.pattern, routed, c.want)
		}
		if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
			t.Fatal(err)
		}
	}
}

func waitReady(t *testing.T, ready chan struct{}) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(waitLimit):
		t.Fatal("consumer not ready in time")
	}
}

func receive(t *testing.T, got chan Delivery) Delivery {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(waitLimit):
		t.Fatal("no delivery in time")
		return Delivery{}
	}
}

// TestAMQPPublishRedeclaresDeletedExchange covers the retry path of a
// publish that fails in flight: the cached exchange is gone, the broker
// closes the channel (NOT_FOUND), and Publish must reopen, redeclare and
// get a confirm.
func TestAMQPPublishRedeclaresDeletedExchange(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	u := testsvc.AMQPURL(t)
	ex := im.exchange(t)
	pub := im.connect(t)
	publish(t, pub, ex, "k", "declares")

	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(ex, false, false); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, ex, "k", "after delete")
	if err := ch.ExchangeDeclarePassive(ex, "topic", true, false, false, false, nil); err != nil {
		t.Errorf("exchange not declared again: %v", err)
	}
}
