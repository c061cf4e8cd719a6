package pulse

import (
	"context"
	"math/rand/v2"
	"time"
)

const (
	defaultReconnectMin = 100 * time.Millisecond
	defaultReconnectMax = 30 * time.Second
)

// backoff yields exponentially growing delays with full jitter, so that many
// clients cut off by one broker restart do not reconnect in lock step.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{min: minDelay, max: maxDelay, next: minDelay}
}

// delay returns the next wait: uniformly random in [d/2, d] where d doubles
// from min up to max.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts over from min after a success.
func (b *backoff) reset() { b.next = b.min }

// wait sleeps for the next delay, returning ctx's error if it ends first.
func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.delay())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
