package agent

// A claim long poll that a stop may abandon, without losing an answer that
// has already begun to arrive:
//
//	stop before the answer's headers ──▶ the call is cancelled; any later answer is discarded
//	answer's headers before the stop  ──▶ the answer is read in full and handed over
//
// Exactly one of the two wins (claimGuard). client-go drops an answer whose
// context was cancelled, so the call runs on a context of its own that
// only the guard cancels.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// claimGuard decides between a claim call's answer and its abandonment.
type claimGuard struct {
	cancel context.CancelFunc

	mu       sync.Mutex
	answered bool  // a 2xx answer began before any stop
	stopped  bool  // the stop came first
	lastErr  error // the last try's failure, kept for a poll that times out while retrying
}

// noteFailure records why one try of the call failed. The try that the
// poll's deadline cuts short says only that; the failure before it is
// the one worth showing.
func (g *claimGuard) noteFailure(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastErr != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return
	}
	g.lastErr = err
}

// lastFailure is why the last failed try failed, or nil.
func (g *claimGuard) lastFailure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// stop cancels the call unless its answer has begun; it reports whether
// the call was cancelled.
func (g *claimGuard) stop() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.answered {
		return false
	}
	g.stopped = true
	g.cancel()
	return true
}

// answer takes a 2xx answer for the caller unless the stop came first.
func (g *claimGuard) answer() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.answered = true
	return true
}

// guardedTransport passes a claim's answer on only if its guard lets it.
type guardedTransport struct {
	base  http.RoundTripper
	guard *claimGuard
}

// RoundTrip sends req and discards a 2xx answer that came after the stop.
func (t guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	switch {
	case err != nil:
		t.guard.noteFailure(err)
		return resp, err
	case resp.StatusCode/100 != 2:
		t.guard.noteFailure(fmt.Errorf("%s %s answered %s", req.Method, req.URL.Redacted(), resp.Status))
		return resp, err
	}
	if !t.guard.answer() {
		_ = resp.Body.Close()
		return nil, context.Canceled
	}
	return resp, nil
}

// guardedClient is hc (or, like client-go's default, a client that does
// not follow redirects) whose transport is guarded.
func guardedClient(hc *http.Client, g *claimGuard) *http.Client {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if hc != nil {
		*c = *hc
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = guardedTransport{base: base, guard: g}
	return c
}
