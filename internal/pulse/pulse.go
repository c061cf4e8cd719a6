// Package pulse publishes and consumes messages with Taskcluster's Pulse
// conventions: topic exchanges named exchange/<service>/v1/<name>, dotted
// routing keys, durable named queues, manual acknowledgement and bounded
// prefetch. Two implementations share the Bus interface: AMQP (RabbitMQ,
// amqp091-go) for production and an in-process bus for the embedded default.
//
// Conventions shared by both implementations:
//   - Exchanges are durable topic exchanges, declared by whoever publishes
//     or binds first; routing keys are dotted words, and binding patterns use
//     `*` for exactly one word and `#` for zero or more (MatchRoutingKey).
//   - Taskcluster's `route.<r>` keys travel as CC keys: the message is routed
//     on them as well as on the primary key, reaches each queue at most once,
//     and arrives with its primary RoutingKey and a "CC" header ([]any of
//     strings).
//   - Delivery is at least once: publishers retry until the broker confirms,
//     unacknowledged messages return to the queue (Redelivered set) when a
//     consumer stops or loses its connection, so handlers must be idempotent.
//   - Handlers run concurrently, at most Prefetch at a time, one goroutine per
//     delivery; Prefetch 1 gives strict queue order.
//   - A message published while no queue is bound to its exchange is dropped.
package pulse

import (
	"context"
	"time"
)

// Publisher sends a message to a topic exchange.
type Publisher interface {
	// Publish sends body (JSON) to exchange with the primary routing key and
	// any CC routing keys (Taskcluster's `route.<r>` keys). It returns once
	// the broker has confirmed the message, retrying transient failures
	// until ctx is done.
	Publish(ctx context.Context, msg Outgoing) error
}

// Outgoing is a message to publish.
type Outgoing struct {
	Exchange   string
	RoutingKey string
	CC         []string
	Body       []byte
}

// Binding attaches a queue to an exchange with a routing-key pattern
// (`*` one word, `#` zero or more words).
type Binding struct {
	Exchange          string
	RoutingKeyPattern string
}

// Delivery is one received message. Exactly one of Ack or Nack must be
// called for it.
type Delivery struct {
	Exchange    string
	RoutingKey  string
	Body        []byte
	Redelivered bool
	// Headers carries the AMQP headers (the in-process bus fills it too).
	Headers map[string]any

	ack  func() error
	nack func(requeue bool) error
}

// Ack acknowledges the delivery: the broker forgets it.
func (d Delivery) Ack() error { return d.ack() }

// Nack rejects the delivery; with requeue the broker delivers it again.
func (d Delivery) Nack(requeue bool) error { return d.nack(requeue) }

// NewDelivery builds a Delivery with the given acknowledgement functions; for
// implementations of Consumer and for tests of handlers.
func NewDelivery(exchange, routingKey string, body []byte, redelivered bool, headers map[string]any, ack func() error, nack func(requeue bool) error) Delivery {
	return Delivery{Exchange: exchange, RoutingKey: routingKey, Body: body, Redelivered: redelivered, Headers: headers, ack: ack, nack: nack}
}

// ConsumeOptions tunes a consumer.
type ConsumeOptions struct {
	// Queue is the queue's name; the AMQP implementation prefixes nothing, so
	// pass Taskcluster's `queue/<user>/<name>` form. Consumers with the same
	// Queue compete for its messages.
	Queue string
	// Prefetch bounds unacknowledged deliveries in flight (default 10).
	Prefetch int
	// Exclusive makes an auto-deleted queue that lives only as long as the
	// consumer (for listeners that need no durability).
	Exclusive bool
	// MaxLength caps a durable queue's length, 0 for no cap.
	MaxLength int
	// ReconnectMin and ReconnectMax bound the reconnect backoff (defaults
	// 100 ms and 30 s).
	ReconnectMin, ReconnectMax time.Duration
	// Ready, if set, is called each time the queue and its bindings are in
	// place and deliveries can start: once at start and again after every
	// reconnect. Messages published after it is called reach the queue.
	Ready func()
}

// Handler processes one delivery; it must Ack or Nack it.
type Handler func(ctx context.Context, d Delivery)

// Consumer receives messages from bound exchanges.
type Consumer interface {
	// Consume declares the queue and its bindings and calls handler for each
	// delivery until ctx is done, reconnecting with backoff after broker
	// failures. It returns nil when ctx is cancelled, or an error when the
	// queue cannot be set up at all (bad URL, refused credentials).
	Consume(ctx context.Context, opts ConsumeOptions, bindings []Binding, handler Handler) error
}

// Bus is a Publisher and a Consumer on one connection.
type Bus interface {
	Publisher
	Consumer
	// Close releases the connection.
	Close() error
}
