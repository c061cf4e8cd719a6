package pulse

import (
	"math/rand/v2"
	"time"
)

const (
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 30 * time.Second
)

// backoff yields exponentially growing delays with jitter, so that many
// clients cut off by one broker restart do not reconnect in lock step.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{min: minDelay, max: maxDelay, next: minDelay}
}

// delay returns the next wait: uniformly random in [max(d/2, min), d] where
// d doubles from min up to max.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	low := max(d/2, b.min)
	return low + rand.N(d-low+1)
}

// reset starts over from min after a success.
func (b *backoff) reset() { b.next = b.min }
