package pulse

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpPublisher is the bus's publishing state: one channel in confirm mode
// shared by all publishers, and the exchanges declared on it.
type amqpPublisher struct {
	// mu serialises use of ch so that each publish's confirmation is
	// tracked in order; waiting for the confirmation happens outside it, so
	// concurrent publishers pipeline.
	mu sync.Mutex
	ch *amqp.Channel
	// declared caches exchange declarations per channel; a new channel
	// starts empty so an exchange deleted behind our back is re-declared.
	declared map[string]bool
}

// Publish declares msg.Exchange as a durable topic exchange if this channel
// has not yet, publishes msg as a persistent application/json message with
// its CC keys in the "CC" header, and waits for the broker's confirm. It
// retries on connection or channel loss, or a negative confirm, until ctx is
// done (the last attempt comes just before ctx's deadline, if it has one),
// so a message may be delivered more than once (at-least-once).
func (b *amqpBus) Publish(ctx context.Context, msg Outgoing) error {
	if err := validateOutgoing(msg); err != nil {
		return err
	}
	err := retryBroker(ctx, b.logger, publishRetryMax, "publish", []any{"exchange", msg.Exchange, "routing_key", msg.RoutingKey},
		func() error { return b.publishOnce(ctx, msg) })
	if err == nil || errors.Is(err, ErrClosed) || permanent(err) {
		return err
	}
	return fmt.Errorf("pulse: publish to %s: %w", msg.Exchange, err)
}

func (b *amqpBus) publishOnce(ctx context.Context, msg Outgoing) error {
	p := amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		Body:         msg.Body,
	}
	if len(msg.CC) > 0 {
		// RabbitMQ routes on the CC header's keys as well as the routing
		// key (sender-selected distribution); it must be an array of strings.
		cc := make([]any, len(msg.CC))
		for i, k := range msg.CC {
			cc[i] = k
		}
		p.Headers = amqp.Table{"CC": cc}
	}
	dc, err := b.publishLocked(ctx, msg, p)
	if err != nil {
		return err
	}
	ack, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("pulse: wait for confirm from %s: %w", msg.Exchange, err)
	}
	if !ack {
		// amqp091 also reports a nack when the channel closed before the
		// confirm arrived; either way the broker may not have the message.
		return fmt.Errorf("pulse: publish to %s not confirmed by the broker", msg.Exchange)
	}
	return nil
}

// publishLocked makes sure there is a confirm channel and the exchange is
// declared on it, then publishes.
func (b *amqpBus) publishLocked(ctx context.Context, msg Outgoing, p amqp.Publishing) (*amqp.DeferredConfirmation, error) {
	b.pub.mu.Lock()
	defer b.pub.mu.Unlock()
	if b.pub.ch == nil || b.pub.ch.IsClosed() {
		conn, err := b.connection()
		if err != nil {
			return nil, err
		}
		ch, err := conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("pulse: open publish channel: %w", err)
		}
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("pulse: enable publisher confirms: %w", err)
		}
		b.pub.ch, b.pub.declared = ch, map[string]bool{}
	}
	if !b.pub.declared[msg.Exchange] {
		if err := declareExchange(b.pub.ch, msg.Exchange); err != nil {
			return nil, err
		}
		b.pub.declared[msg.Exchange] = true
	}
	dc, err := b.pub.ch.PublishWithDeferredConfirmWithContext(ctx, msg.Exchange, msg.RoutingKey, false, false, p)
	if err != nil {
		return nil, fmt.Errorf("pulse: publish to %s: %w", msg.Exchange, err)
	}
	return dc, nil
}

// declareExchange declares a durable topic exchange, as Taskcluster's
// services do; redeclaring an existing one is a no-op.
func declareExchange(ch *amqp.Channel, name string) error {
	if err := ch.ExchangeDeclare(name, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("pulse: declare exchange %s: %w", name, err)
	}
	return nil
}
