package pulse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// NewInProcess returns a Bus that routes messages between goroutines of one
// process with RabbitMQ's semantics for everything the interface exposes:
// topic routing (a message reaches a queue once however many of its
// bindings or CC keys match), named queues shared round-robin by competing
// consumers, per-consumer prefetch, manual acknowledgement, requeue with
// Redelivered set, and requeue of a stopped consumer's unacknowledged
// messages. A non-exclusive queue and its bindings outlive their consumers
// and keep collecting messages, as a durable queue does (for the life of the
// process); an exclusive queue disappears with its consumer. A message that
// matches no queue is dropped. Publish never waits for consumers: queues are
// unbounded unless MaxLength is set, in which case the oldest ready messages
// are dropped, as RabbitMQ's default overflow does. Handlers run as in the
// AMQP implementation: concurrently, at most Prefetch at a time.
func NewInProcess() Bus {
	return &inProcess{queues: map[string]*ipQueue{}, done: make(chan struct{})}
}

type inProcess struct {
	// mu guards every queue, consumer and message: the bus is small and
	// in-memory, so one lock keeps routing and acknowledgement atomic.
	mu      sync.Mutex
	queues  map[string]*ipQueue
	closed  bool
	done    chan struct{}
	anonSeq int
}

type ipQueue struct {
	name      string
	exclusive bool
	maxLength int
	bindings  []Binding
	ready     []*ipMessage
	consumers []*ipConsumer
	// cursor is where the round-robin search for a consumer resumes.
	cursor int
}

type ipMessage struct {
	exchange, routingKey string
	body                 []byte
	headers              map[string]any
	redelivered          bool
}

type ipConsumer struct {
	queue    *ipQueue
	prefetch int
	// stopped is set when the consumer leaves; late acks then fail.
	stopped bool
	nextTag uint64
	unacked map[uint64]*ipMessage
	// pending holds deliveries assigned to the consumer but not yet handed
	// to its handler; notify wakes the consumer's loop.
	pending []ipPending
	notify  chan struct{}
}

type ipPending struct {
	tag uint64
	msg *ipMessage
	// redelivered is the message's flag when it was assigned, read under
	// the lock because a later requeue changes it.
	redelivered bool
}

// Publish routes msg to every queue with a matching binding. It never blocks
// on consumers.
func (b *inProcess) Publish(ctx context.Context, msg Outgoing) error {
	if err := validateOutgoing(msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pulse: publish to %s: %w", msg.Exchange, err)
	}
	var headers map[string]any
	if len(msg.CC) > 0 {
		// RabbitMQ delivers the CC header as an AMQP array, which amqp091
		// decodes as []any; the in-process bus mirrors that shape.
		cc := make([]any, len(msg.CC))
		for i, k := range msg.CC {
			cc[i] = k
		}
		headers = map[string]any{"CC": cc}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	for _, q := range b.queues {
		if !q.routes(msg) {
			continue
		}
		q.ready = append(q.ready, &ipMessage{
			exchange:   msg.Exchange,
			routingKey: msg.RoutingKey,
			body:       slices.Clone(msg.Body),
			headers:    cloneHeaders(headers),
		})
		if q.maxLength > 0 && len(q.ready) > q.maxLength {
			drop := len(q.ready) - q.maxLength
			clear(q.ready[:drop])
			q.ready = q.ready[drop:]
		}
		q.dispatch()
	}
	return nil
}

// routes reports whether any binding of q matches msg's routing key or one
// of its CC keys.
func (q *ipQueue) routes(msg Outgoing) bool {
	for _, bd := range q.bindings {
		if bd.Exchange != msg.Exchange {
			continue
		}
		if MatchRoutingKey(bd.RoutingKeyPattern, msg.RoutingKey) {
			return true
		}
		for _, cc := range msg.CC {
			if MatchRoutingKey(bd.RoutingKeyPattern, cc) {
				return true
			}
		}
	}
	return false
}

// dispatch hands ready messages to consumers with free prefetch slots,
// round-robin. The caller holds the bus lock.
func (q *ipQueue) dispatch() {
	for len(q.ready) > 0 {
		c := q.nextConsumer()
		if c == nil {
			return
		}
		m := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		c.nextTag++
		c.unacked[c.nextTag] = m
		c.pending = append(c.pending, ipPending{tag: c.nextTag, msg: m, redelivered: m.redelivered})
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

func (q *ipQueue) nextConsumer() *ipConsumer {
	n := len(q.consumers)
	for i := range n {
		idx := (q.cursor + i) % n
		c := q.consumers[idx]
		if len(c.unacked) < c.prefetch {
			q.cursor = (idx + 1) % n
			return c
		}
	}
	return nil
}

// requeueFront puts messages back at the head of the queue, in order, marked
// redelivered, as RabbitMQ does with rejected and orphaned deliveries.
func (q *ipQueue) requeueFront(msgs ...*ipMessage) {
	for _, m := range msgs {
		m.redelivered = true
	}
	q.ready = append(slices.Clone(msgs), q.ready...)
	if q.maxLength > 0 && len(q.ready) > q.maxLength {
		drop := len(q.ready) - q.maxLength
		clear(q.ready[:drop])
		q.ready = q.ready[drop:]
	}
}

// Consume attaches a consumer to the queue (creating it and adding the
// bindings as needed) and runs handler for each delivery until ctx is done
// or the bus is closed. It waits for running handlers to return before it
// returns, then requeues whatever they left unacknowledged.
func (b *inProcess) Consume(ctx context.Context, opts ConsumeOptions, bindings []Binding, handler Handler) error {
	opts, err := opts.withDefaults(bindings, handler)
	if err != nil {
		return err
	}
	c, err := b.attach(opts, bindings)
	if err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		b.detach(c)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.done:
			return ErrClosed
		case <-c.notify:
		}
		b.mu.Lock()
		batch := c.pending
		c.pending = nil
		b.mu.Unlock()
		for _, p := range batch {
			d := b.delivery(c, p)
			wg.Go(func() { handler(ctx, d) })
		}
	}
}

func (b *inProcess) attach(opts ConsumeOptions, bindings []Binding) (*ipConsumer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	name := opts.Queue
	if name == "" {
		// RabbitMQ names server-named queues amq.gen-<random>.
		b.anonSeq++
		name = "amq.gen-inprocess-" + strconv.Itoa(b.anonSeq)
	}
	q := b.queues[name]
	switch {
	case q == nil:
		q = &ipQueue{name: name, exclusive: opts.Exclusive, maxLength: opts.MaxLength}
		b.queues[name] = q
	case q.exclusive || opts.Exclusive:
		return nil, fmt.Errorf("pulse: queue %q is in use and one of its consumers is exclusive: use another ConsumeOptions.Queue", name)
	case q.maxLength != opts.MaxLength:
		return nil, fmt.Errorf("pulse: queue %q exists with MaxLength %d, not %d: use the same ConsumeOptions.MaxLength or another queue", name, q.maxLength, opts.MaxLength)
	}
	for _, bd := range bindings {
		if !slices.Contains(q.bindings, bd) {
			q.bindings = append(q.bindings, bd)
		}
	}
	c := &ipConsumer{queue: q, prefetch: opts.Prefetch, unacked: map[uint64]*ipMessage{}, notify: make(chan struct{}, 1)}
	q.consumers = append(q.consumers, c)
	q.dispatch()
	return c, nil
}

// detach removes c from its queue, returns its unacknowledged and
// undelivered messages to the queue, and deletes an exclusive queue.
func (b *inProcess) detach(c *ipConsumer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.stopped = true
	q := c.queue
	q.consumers = slices.DeleteFunc(q.consumers, func(x *ipConsumer) bool { return x == c })
	tags := make([]uint64, 0, len(c.unacked))
	for tag := range c.unacked {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	msgs := make([]*ipMessage, len(tags))
	for i, tag := range tags {
		msgs[i] = c.unacked[tag]
	}
	c.unacked = nil
	c.pending = nil
	if q.exclusive {
		delete(b.queues, q.name)
		return
	}
	q.requeueFront(msgs...)
	q.dispatch()
}

func (b *inProcess) delivery(c *ipConsumer, p ipPending) Delivery {
	settle := func(requeue bool) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		m, ok := c.unacked[p.tag]
		if c.stopped || !ok {
			return ErrAcknowledged
		}
		delete(c.unacked, p.tag)
		if requeue {
			c.queue.requeueFront(m)
		}
		c.queue.dispatch()
		return nil
	}
	m := p.msg
	return NewDelivery(m.exchange, m.routingKey, m.body, p.redelivered, cloneHeaders(m.headers),
		func() error { return settle(false) },
		func(requeue bool) error { return settle(requeue) })
}

// Close stops every consumer (their Consume calls return ErrClosed) and
// makes later Publish and Consume calls fail with ErrClosed.
func (b *inProcess) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	return nil
}

func cloneHeaders(h map[string]any) map[string]any {
	if h == nil {
		return nil
	}
	out := make(map[string]any, len(h))
	for k, v := range h {
		if a, ok := v.([]any); ok {
			v = slices.Clone(a)
		}
		out[k] = v
	}
	return out
}
