package runner

// Client is the control API's Go client, used by the CLI.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/labrunner/labrunner/platform"
)

// ErrNotRunning means nothing answers on the control channel.
var ErrNotRunning = errors.New("the runner is not running (nothing answers on its control channel)")

// Client talks to a runner over its control channel.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client of the control channel at path.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := platform.DialControl(ctx, path)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
			}
			return c, nil
		},
		DisableKeepAlives: true,
	}}}
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	} else if method == http.MethodPost {
		rd = bytes.NewReader([]byte("{}"))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://runner"+path, rd)
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, ErrNotRunning) {
			return fmt.Errorf("%w (%s)", ErrNotRunning, c.path)
		}
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("control API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("control API %s %s: %s", method, path, resp.Status)
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("control API %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Status returns the live status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Drain stops claiming.
func (c *Client) Drain(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodPost, "/v1/drain", nil, &s)
}

// Resume claims again.
func (c *Client) Resume(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodPost, "/v1/resume", nil, &s)
}

// Quarantine quarantines the machine.
func (c *Client) Quarantine(ctx context.Context, req QuarantineRequest) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodPost, "/v1/quarantine", req, &s)
}

// Unquarantine lifts the quarantine.
func (c *Client) Unquarantine(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodPost, "/v1/unquarantine", nil, &s)
}

// Reboot asks for a reboot.
func (c *Client) Reboot(ctx context.Context, req RebootRequest) (*Status, error) {
	var s Status
	return &s, c.call(ctx, http.MethodPost, "/v1/reboot", req, &s)
}

// Check runs every check now.
func (c *Client) Check(ctx context.Context) (*CheckReport, error) {
	var r CheckReport
	return &r, c.call(ctx, http.MethodPost, "/v1/check", nil, &r)
}

// Metrics returns the Prometheus text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var s string
	return s, c.call(ctx, http.MethodGet, "/metrics", nil, &s)
}

// ReadStatus rebuilds the status from the state file, for when the runner
// is not running.
func ReadStatus(cfg *Config, version string) (*Status, error) {
	st, err := NewStateStore(cfg.StateFile).Load()
	if err != nil {
		return nil, err
	}
	var p Probes
	p.fill(func() string { return "" })
	up, _ := p.Uptime()
	s := BuildStatus(st, cfg, version, false, timeNow(), up)
	return &s, nil
}

// timeNow is the clock of ReadStatus.
var timeNow = time.Now
