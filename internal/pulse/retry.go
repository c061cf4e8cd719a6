package pulse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// retryBroker runs try until it succeeds or fails for good (ErrClosed or a
// permanent error, returned as they are), sleeping between tries with
// jittered backoff up to maxDelay and logging each failure at WARN as
// "pulse: <what> failed, retrying" with attrs. The last try comes just
// before ctx's deadline, if it has one. When ctx ends first, it returns a
// *gaveUp with the last error.
func retryBroker(ctx context.Context, log *slog.Logger, maxDelay time.Duration, what string, attrs []any, try func() error) error {
	bo := newBackoff(defaultReconnectMin, maxDelay)
	lastTry := false
	for {
		err := try()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrClosed), permanent(err):
			return err
		case ctx.Err() != nil:
			return &gaveUp{cause: ctx.Err(), last: err}
		case lastTry:
			return &gaveUp{cause: context.DeadlineExceeded, last: err}
		}
		var d time.Duration
		d, lastTry = fitDeadline(ctx, bo.delay())
		log.Warn("pulse: "+what+" failed, retrying", append(attrs[:len(attrs):len(attrs)], "error", err, "retry_in", d)...)
		if sleepCtx(ctx, d) != nil {
			return &gaveUp{cause: ctx.Err(), last: err}
		}
	}
}

// gaveUp is retryBroker running out of time: cause is the context's error
// (context.DeadlineExceeded when the deadline left no time for another
// try), last the error of the last try. errors.Is matches either.
type gaveUp struct{ cause, last error }

func (e *gaveUp) Error() string   { return fmt.Sprintf("%v (last error: %v)", e.cause, e.last) }
func (e *gaveUp) Unwrap() []error { return []error{e.cause, e.last} }
