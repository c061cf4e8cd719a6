package pulse

import "errors"

// ErrClosed is returned by Publish and Consume once the Bus has been closed.
var ErrClosed = errors.New("pulse: bus closed")

// ErrAcknowledged is returned by the in-process bus's Ack or Nack when the
// delivery was already acknowledged, or when its consumer has stopped and
// the message has gone back to the queue. Over AMQP the same late ack fails
// with the closed channel's error instead, and acknowledging a delivery
// twice is a channel error after which the consumer reconnects.
var ErrAcknowledged = errors.New("pulse: delivery already acknowledged or no longer held by its consumer")
