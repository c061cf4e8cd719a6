package pulse

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Parker declares queues that nobody consumes from: messages routed to them
// wait there until an operator looks (a dead-letter queue, for example).
type Parker interface {
	// DeclareQueue declares the durable queue opts.Queue (x-max-length when
	// opts.MaxLength > 0) and its bindings, retrying broker failures with
	// backoff until ctx is done. Only Queue and MaxLength of opts are used.
	DeclareQueue(ctx context.Context, opts ConsumeOptions, bindings []Binding) error
}

var (
	_ Parker = (*amqpBus)(nil)
	_ Parker = (*inProcess)(nil)
)

func checkParkOptions(opts ConsumeOptions, bindings []Binding) error {
	switch {
	case opts.Queue == "":
		return errors.New("pulse: DeclareQueue: Queue is empty: name the queue to park messages in")
	case opts.Exclusive:
		return fmt.Errorf("pulse: DeclareQueue %q: Exclusive makes no sense for a queue nobody consumes; leave it false", opts.Queue)
	case len(bindings) == 0:
		return fmt.Errorf("pulse: DeclareQueue %q: no bindings: nothing would reach the queue", opts.Queue)
	}
	return nil
}

// DeclareQueue declares the queue and its bindings on a channel of its own.
func (b *amqpBus) DeclareQueue(ctx context.Context, opts ConsumeOptions, bindings []Binding) error {
	if err := checkParkOptions(opts, bindings); err != nil {
		return err
	}
	opts.Prefetch = 0
	err := retryBroker(ctx, b.logger, defaultReconnectMax, "declaring a queue", []any{"queue", opts.Queue},
		func() error { return b.declareOnce(opts, bindings) })
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("pulse: declare queue %q: %w", opts.Queue, err)
}

func (b *amqpBus) declareOnce(opts ConsumeOptions, bindings []Binding) error {
	conn, err := b.connection()
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("pulse: open a channel: %w", err)
	}
	defer func() { _ = ch.Close() }()
	_, err = declareQueue(ch, opts, bindings)
	return err
}

// DeclareQueue creates the queue, if it does not exist, and adds the
// bindings; published messages then wait in it.
func (b *inProcess) DeclareQueue(ctx context.Context, opts ConsumeOptions, bindings []Binding) error {
	if err := checkParkOptions(opts, bindings); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	q := b.queues[opts.Queue]
	switch {
	case q == nil:
		q = &ipQueue{name: opts.Queue, maxLength: opts.MaxLength}
		b.queues[opts.Queue] = q
	case q.exclusive:
		return fmt.Errorf("pulse: queue %q is exclusive to a consumer: park messages in another queue", opts.Queue)
	case q.maxLength != opts.MaxLength:
		return fmt.Errorf("pulse: queue %q exists with MaxLength %d, not %d: use the same MaxLength or another queue", opts.Queue, q.maxLength, opts.MaxLength)
	}
	for _, bd := range bindings {
		if !slices.Contains(q.bindings, bd) {
			q.bindings = append(q.bindings, bd)
		}
	}
	return nil
}
