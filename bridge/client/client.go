package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Client calls a bridge's master API. Connection errors and 5xx answers are
// retried with backoff; the calls are safe to repeat.
type Client struct {
	base string
	http *retryablehttp.Client
}

// Options tunes a Client; the zero value is a working default.
type Options struct {
	// RetryMax is how many times a transient failure is retried (default 8).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff (defaults 200 ms, 10 s).
	RetryWaitMin, RetryWaitMax time.Duration
	// Logger receives retry logs (default slog.Default()).
	Logger *slog.Logger
}

// New returns a client of the bridge at baseURL (http(s)://host:port).
func New(baseURL string, opts Options) (*Client, error) {
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("bridge client: base URL %q must start with http:// or https://", baseURL)
	}
	c := retryablehttp.NewClient()
	c.RetryMax = opts.RetryMax
	if c.RetryMax == 0 {
		c.RetryMax = 8
	}
	c.RetryWaitMin, c.RetryWaitMax = opts.RetryWaitMin, opts.RetryWaitMax
	if c.RetryWaitMin == 0 {
		c.RetryWaitMin = 200 * time.Millisecond
	}
	if c.RetryWaitMax == 0 {
		c.RetryWaitMax = 10 * time.Second
	}
	// A claim may be held open for up to a minute.
	c.HTTPClient.Timeout = 90 * time.Second
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c.Logger = leveled{log}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: c}, nil
}

type leveled struct{ l *slog.Logger }

func (s leveled) Error(msg string, kv ...any) { s.warn(msg, kv) }
func (s leveled) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s leveled) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }
func (s leveled) Warn(msg string, kv ...any)  { s.warn(msg, kv) }

// warn logs a failed try at WARN, except one its caller cancelled (an
// agent abandoning its claim on a drain): that is the caller's doing.
func (s leveled) warn(msg string, kv []any) {
	for _, v := range kv {
		if err, ok := v.(error); ok && errors.Is(err, context.Canceled) {
			s.l.Debug(msg, kv...)
			return
		}
	}
	s.l.Warn(msg, kv...)
}

// Error is a non-2xx answer from the bridge.
type Error struct {
	Status int
	ErrorResponse
}

func (e *Error) Error() string {
	return fmt.Sprintf("bridge: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrConflict matches an Error with status 409: the request is no longer
// held by this agent.
var ErrConflict = errors.New("bridge: request not held by this agent")

// Is lets errors.Is(err, ErrConflict) work.
func (e *Error) Is(target error) bool {
	return target == ErrConflict && e.Status == http.StatusConflict
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("bridge client: encode %s: %w", path, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("bridge client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("bridge client: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("bridge client: read %s answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, &e.ErrorResponse)
		return e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("bridge client: decode %s answer: %w", path, err)
	}
	return nil
}

// Claim claims a pending request for one of req.Builders, waiting up to
// req.Wait seconds; it returns nil when nothing was pending.
func (c *Client) Claim(ctx context.Context, req ClaimRequest) (*Build, error) {
	var out ClaimResponse
	if err := c.call(ctx, http.MethodPost, "/api/v1/master/claim", req, &out); err != nil {
		return nil, err
	}
	return out.Build, nil
}

// Heartbeat refreshes a running build's claim and reports cancellation.
func (c *Client) Heartbeat(ctx context.Context, req HeartbeatRequest) (HeartbeatResponse, error) {
	var out HeartbeatResponse
	err := c.call(ctx, http.MethodPost, "/api/v1/master/heartbeat", req, &out)
	return out, err
}

// Finish reports a build's result.
func (c *Client) Finish(ctx context.Context, req FinishRequest) (FinishResponse, error) {
	var out FinishResponse
	err := c.call(ctx, http.MethodPost, "/api/v1/master/finish", req, &out)
	return out, err
}

// Pending returns the pending requests per builder.
func (c *Client) Pending(ctx context.Context) (map[string]int, error) {
	var out PendingResponse
	if err := c.call(ctx, http.MethodGet, "/api/v1/master/pending", nil, &out); err != nil {
		return nil, err
	}
	return out.Builders, nil
}

// Status returns the bridge's status document (what `bridge status` prints).
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, "/api/v1/status", nil, &out)
	return out, err
}
