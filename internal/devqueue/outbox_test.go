package devqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
)

// flakyPublisher answers from a script per routing key: "away" is a broker
// that did not answer in time, "refuse" one that refused the message.
type flakyPublisher struct {
	mu        sync.Mutex
	script    map[string][]string
	published []string
}

func (p *flakyPublisher) Publish(_ context.Context, msg pulse.Outgoing) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.script[msg.RoutingKey]; len(s) > 0 {
		p.script[msg.RoutingKey] = s[1:]
		switch s[0] {
		case "away":
			return fmt.Errorf("pulse: publish to %s: %w (last error: connection refused)", msg.Exchange, context.DeadlineExceeded)
		case "refuse":
			return errors.New("pulse: exchange name is empty")
		}
	}
	p.published = append(p.published, msg.RoutingKey)
	return nil
}

// A message the broker does not take in time waits for it, and the ones
// behind it keep their order; a refused one is dropped; once stopped, the
// outbox drops what the broker does not take.
func TestOutboxKeepsMessagesWhileTheBrokerIsAway(t *testing.T) {
	defer func(p time.Duration) { retryPause = p }(retryPause)
	retryPause = time.Millisecond
	pub := &flakyPublisher{script: map[string][]string{"a": {"away", "away", "away"}, "b": {"refuse"}}}
	o := newOutbox(pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, k := range []string{"a", "b", "c"} {
		o.add(pulse.Outgoing{Exchange: "x", RoutingKey: k})
	}
	o.flush(10 * time.Second)
	pub.mu.Lock()
	got := fmt.Sprint(pub.published)
	pub.mu.Unlock()
	if got != "[a c]" {
		t.Errorf("published %s, want [a c] (a after the broker came back, b refused, c in order)", got)
	}
	if n := o.handled.Load(); n != 3 {
		t.Errorf("handled %d messages, want 3", n)
	}
	o.stop()
	pub.mu.Lock()
	pub.script["d"] = []string{"away", "away"}
	pub.mu.Unlock()
	o.add(pulse.Outgoing{Exchange: "x", RoutingKey: "d"})
	o.flush(10 * time.Second)
	if n := o.handled.Load(); n != 4 {
		t.Errorf("handled %d messages after stop, want 4 (d dropped)", n)
	}
}
