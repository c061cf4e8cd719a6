package bridge

// How a delivery is handled (instead of BBB's crash-and-redeliver):
//
//	handler ok                       -> ack
//	handler fails, transient         -> retry with backoff, up to retry.attempts
//	handler fails, permanent         -> dead letter at once
//	handler must wait for another    -> retry with backoff for up to maxWait,
//	message                             attempts not counted
//	attempts used up                 -> dead letter
//	dead letter: store the message and error in bridge_dead_letters, publish
//	it to the dead-letter exchange, log the error, then ack
//	instance stops mid-handling      -> no ack; RabbitMQ delivers it again
//	                                    (handlers are idempotent)

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

// permanentError marks a failure that repeating cannot fix (a message that
// is not JSON, a required field missing).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(format string, args ...any) error {
	return permanentError{fmt.Errorf(format, args...)}
}

// waitError marks a message that must wait for another one (an earlier
// build of the same request, a copy being handled elsewhere). Waiting does
// not use up the attempts; it is bounded by maxWait instead.
type waitError struct{ err error }

func (e waitError) Error() string { return e.err.Error() }
func (e waitError) Unwrap() error { return e.err }

func mustWait(format string, args ...any) error {
	return waitError{fmt.Errorf(format, args...)}
}

// maxWait bounds how long a message waits for another before it counts as
// failing.
const maxWait = 5 * time.Minute

type handlerFunc func(ctx context.Context, d pulse.Delivery) error

func (b *Bridge) consumer(name string, binding pulse.Binding, h handlerFunc) func(context.Context) error {
	queue := b.cfg.Pulse.QueueBasename + "/" + name
	return func(ctx context.Context) error {
		opts := pulse.ConsumeOptions{Queue: queue, Prefetch: b.cfg.Pulse.Prefetch, Ready: func() { b.markReady(name) }}
		return b.bus.Consume(ctx, opts, []pulse.Binding{binding}, func(ctx context.Context, d pulse.Delivery) {
			b.deliver(ctx, name, d, h)
		})
	}
}

func (b *Bridge) deliver(ctx context.Context, name string, d pulse.Delivery, h handlerFunc) {
	start := time.Now()
	b.lastMessage.set(b.now())
	err := b.withRetries(ctx, func() error { return h(ctx, d) })
	if ctx.Err() != nil {
		// Shutting down: leave the message unacknowledged for another instance.
		_ = d.Nack(true)
		return
	}
	b.log.Debug("message handled", "queue", name, "routingKey", d.RoutingKey, "redelivered", d.Redelivered, "err", err)
	outcome := "ok"
	if err != nil {
		outcome = "dead-letter"
		b.deadLetter(ctx, name, d, err)
	}
	b.metrics.messages.WithLabelValues(name, outcome).Inc()
	b.metrics.handleSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err := d.Ack(); err != nil {
		b.log.Warn("ack failed; the message will come again", "queue", name, "err", err)
	}
}

// withRetries runs fn until it succeeds, fails permanently or the attempts
// are used up, with jittered exponential backoff between attempts.
func (b *Bridge) withRetries(ctx context.Context, fn func() error) error {
	delay := b.cfg.Retry.Min
	start := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		var perm permanentError
		var we waitError
		if errors.As(err, &we) && time.Since(start) < maxWait {
			attempt-- // waiting is not failing
		}
		if err == nil || errors.As(err, &perm) || attempt >= b.cfg.Retry.Attempts || ctx.Err() != nil {
			return err
		}
		b.log.Debug("handler failed; retrying", "attempt", attempt, "err", err)
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(delay*2, b.cfg.Retry.Max)
	}
}

func (b *Bridge) deadLetter(ctx context.Context, name string, d pulse.Delivery, cause error) {
	b.log.Error("message parked on the dead-letter queue", "queue", name, "routingKey", d.RoutingKey, "err", cause)
	b.metrics.deadLetters.Inc()
	dl := DeadLetter{Queue: b.cfg.Pulse.QueueBasename + "/" + name, RoutingKey: d.RoutingKey, Body: string(d.Body),
		Error: cause.Error(), Instance: b.cfg.InstanceID, At: b.now().Unix()}
	if err := b.tables.addDeadLetter(ctx, dl); err != nil {
		b.log.Error("record dead letter", "err", err)
	}
	if err := b.bus.Publish(ctx, pulse.Outgoing{Exchange: b.cfg.Pulse.DeadLetterExchange, RoutingKey: name + "." + d.RoutingKey, Body: d.Body}); err != nil {
		b.log.Error("publish dead letter", "err", err)
	}
}
