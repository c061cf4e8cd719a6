package pulse

import (
	"context"
	"math/rand/v2"
	"time"
)

const (
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 30 * time.Second
	// publishRetryMax caps the wait between tries of one Publish: a
	// publisher has a message in hand and a deadline, so a longer sleep
	// mostly risks missing a broker that is back.
	publishRetryMax = 5 * time.Second
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

// lastTryMargin is how long before a context's deadline a retry loop makes
// its last attempt, rather than sleeping through the deadline.
const lastTryMargin = 500 * time.Millisecond

// fitDeadline shortens the delay d so that the next attempt comes
// lastTryMargin before ctx's deadline, if d would run past that; last then
// reports that this next attempt is the final one. Without it a delay grown
// to tens of seconds forfeits the remaining time: a publish with a 30 s
// context gave up after 13 s of a 15 s broker restart.
func fitDeadline(ctx context.Context, d time.Duration) (delay time.Duration, last bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return d, false
	}
	left := time.Until(deadline) - lastTryMargin
	if left >= d {
		return d, false
	}
	return max(left, 0), true
}
