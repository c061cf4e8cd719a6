package pulse

import (
	"context"
	"errors"
	"fmt"
)

// QueueInfo is what the broker says of one queue.
type QueueInfo struct {
	Name string `json:"name"`
	// Consumers are the consumers attached now; Messages the messages
	// ready for them.
	Consumers int `json:"consumers"`
	Messages  int `json:"messages"`
}

// Inspector reports a queue's consumers and backlog, for health pages.
// Both buses implement it.
type Inspector interface {
	InspectQueue(ctx context.Context, name string) (QueueInfo, error)
}

// ErrNoQueue is returned by InspectQueue for a queue that does not exist.
var ErrNoQueue = errors.New("no such queue")

// InspectQueue asks RabbitMQ with a passive declare on a channel of its
// own (a failed passive declare closes the channel it ran on).
func (b *amqpBus) InspectQueue(ctx context.Context, name string) (QueueInfo, error) {
	conn, err := b.connection()
	if err != nil {
		return QueueInfo{}, fmt.Errorf("inspect queue %s: %w", name, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return QueueInfo{}, fmt.Errorf("inspect queue %s: open channel: %w", name, err)
	}
	defer func() { _ = ch.Close() }()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		return QueueInfo{}, fmt.Errorf("inspect queue %s: %w: %v", name, ErrNoQueue, err)
	}
	return QueueInfo{Name: name, Consumers: q.Consumers, Messages: q.Messages}, ctx.Err()
}

// InspectQueue reads the in-process queue.
func (b *inProcess) InspectQueue(_ context.Context, name string) (QueueInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[name]
	if !ok {
		return QueueInfo{}, fmt.Errorf("inspect queue %s: %w", name, ErrNoQueue)
	}
	n := 0
	for _, c := range q.consumers {
		if !c.stopped {
			n++
		}
	}
	return QueueInfo{Name: name, Consumers: n, Messages: len(q.ready)}, nil
}
