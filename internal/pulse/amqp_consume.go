package pulse

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Consume declares the queue (durable, or exclusive and auto-deleted when
// opts.Exclusive; x-max-length when opts.MaxLength > 0), declares each
// binding's exchange as a durable topic exchange and binds it, sets the
// prefetch with basic.qos and consumes with manual acknowledgement.
//
// Each delivery's handler runs in its own goroutine, so up to Prefetch
// handlers run at once and deliveries may be handled out of order; use
// Prefetch 1 for strict order. When the channel or connection drops, the
// broker requeues unacknowledged messages and Consume sets everything up
// again after a backoff between ReconnectMin and ReconnectMax; a handler
// still running on a delivery from the lost channel gets an error from Ack
// or Nack, and the message comes again (at-least-once). On cancellation
// Consume stops new deliveries, waits for running handlers so their acks
// reach the broker, deletes an exclusive queue, and returns nil.
func (b *amqpBus) Consume(ctx context.Context, opts ConsumeOptions, bindings []Binding, handler Handler) error {
	opts, err := opts.withDefaults(bindings, handler)
	if err != nil {
		return err
	}
	var handlers sync.WaitGroup
	defer handlers.Wait()
	bo := newBackoff(opts.ReconnectMin, opts.ReconnectMax)
	for {
		started, err := b.consumeSession(ctx, opts, bindings, handler, &handlers)
		switch {
		case ctx.Err() != nil:
			return nil
		case b.isClosed():
			return ErrClosed
		case permanent(err):
			return fmt.Errorf("pulse: consume from queue %q: %w", opts.Queue, err)
		}
		if started {
			bo.reset()
		}
		d := bo.delay()
		b.logger.Warn("pulse: consumer lost its channel, reconnecting", "queue", opts.Queue, "error", err, "retry_in", d)
		if sleepCtx(ctx, d) != nil {
			return nil
		}
	}
}

// consumeSession runs one channel's worth of consuming. started reports
// whether deliveries began, so that the caller restarts its backoff.
func (b *amqpBus) consumeSession(ctx context.Context, opts ConsumeOptions, bindings []Binding, handler Handler, handlers *sync.WaitGroup) (started bool, err error) {
	conn, err := b.connection()
	if err != nil {
		return false, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("pulse: open channel: %w", err)
	}
	// Closing the channel hands unacknowledged messages back to the queue.
	defer func() { _ = ch.Close() }()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))

	queue, err := declareQueue(ch, opts, bindings)
	if err != nil {
		return false, err
	}
	tag := "labrunner-" + randomHex()
	deliveries, err := ch.Consume(queue, tag, false, opts.Exclusive, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("pulse: consume from queue %q: %w", queue, err)
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	for {
		select {
		case <-ctx.Done():
			b.stopSession(ch, tag, queue, opts.Exclusive, handlers)
			return true, nil
		case <-b.done:
			return true, ErrClosed
		case d, ok := <-deliveries:
			if !ok {
				return true, closeReason(closed)
			}
			del := amqpDelivery(d)
			handlers.Go(func() { handler(ctx, del) })
		}
	}
}

// declareQueue declares the queue and its bindings and sets the prefetch,
// returning the queue's name (the server's, for an unnamed exclusive queue).
func declareQueue(ch *amqp.Channel, opts ConsumeOptions, bindings []Binding) (string, error) {
	if err := ch.Qos(opts.Prefetch, 0, false); err != nil {
		return "", fmt.Errorf("pulse: set prefetch %d: %w", opts.Prefetch, err)
	}
	var args amqp.Table
	if opts.MaxLength > 0 {
		args = amqp.Table{"x-max-length": int64(opts.MaxLength)}
	}
	q, err := ch.QueueDeclare(opts.Queue, !opts.Exclusive, opts.Exclusive, opts.Exclusive, false, args)
	if err != nil {
		return "", fmt.Errorf("pulse: declare queue %q: %w", opts.Queue, err)
	}
	for _, bd := range bindings {
		if err := declareExchange(ch, bd.Exchange); err != nil {
			return "", err
		}
		if err := ch.QueueBind(q.Name, bd.RoutingKeyPattern, bd.Exchange, false, nil); err != nil {
			return "", fmt.Errorf("pulse: bind queue %q to %s with %q: %w", q.Name, bd.Exchange, bd.RoutingKeyPattern, err)
		}
	}
	return q.Name, nil
}

// stopSession ends a consumer on cancellation: no new deliveries, running
// handlers finish (their acks still reach the broker on the open channel),
// and an exclusive queue is deleted now rather than when the shared
// connection eventually closes.
func (b *amqpBus) stopSession(ch *amqp.Channel, tag, queue string, exclusive bool, handlers *sync.WaitGroup) {
	if err := ch.Cancel(tag, false); err != nil {
		b.logger.Debug("pulse: cancel consumer", "queue", queue, "error", err)
	}
	handlers.Wait()
	if exclusive {
		if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
			b.logger.Debug("pulse: delete exclusive queue", "queue", queue, "error", err)
		}
	}
}

// closeReason explains why a delivery channel closed.
func closeReason(closed <-chan *amqp.Error) error {
	select {
	case e, ok := <-closed:
		if ok && e != nil {
			return e
		}
	default:
	}
	return errors.New("pulse: delivery channel closed")
}

func amqpDelivery(d amqp.Delivery) Delivery {
	return NewDelivery(d.Exchange, d.RoutingKey, d.Body, d.Redelivered, map[string]any(d.Headers),
		func() error {
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("pulse: ack delivery %d: %w", d.DeliveryTag, err)
			}
			return nil
		},
		func(requeue bool) error {
			if err := d.Nack(false, requeue); err != nil {
				return fmt.Errorf("pulse: nack delivery %d: %w", d.DeliveryTag, err)
			}
			return nil
		})
}
