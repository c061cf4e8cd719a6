// Package client is the Go client of the provisioner's /api/v1 and holds
// its wire types. The runner uses it to register, heartbeat and long-poll
// directives; the provisioner CLI uses it for everything else. Transient
// failures (connection errors, 5xx, 429) are retried with backoff.
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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Client calls one provisioner with one token.
type Client struct {
	base     string
	token    string
	operator string
	http     *retryablehttp.Client
}

// Option adjusts a Client.
type Option func(*Client)

// WithHTTPClient sets the underlying HTTP client (TLS settings, transport).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http.HTTPClient = hc }
}

// WithRetries sets how many times a transient failure is retried and the
// backoff bounds.
func WithRetries(n int, minWait, maxWait time.Duration) Option {
	return func(c *Client) {
		c.http.RetryMax, c.http.RetryWaitMin, c.http.RetryWaitMax = n, minWait, maxWait
	}
}

// WithOperator names the person behind an admin token in audit records.
func WithOperator(name string) Option {
	return func(c *Client) { c.operator = name }
}

// WithLogger logs retries to l (never tokens).
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.http.Logger = l }
}

// New returns a client of the provisioner at baseURL (scheme and host,
// e.g. https://prov.example.com) using token (admin, read-only or machine;
// empty for registration only).
func New(baseURL, token string, opts ...Option) *Client {
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	rc.RetryMax = 5
	rc.RetryWaitMin = 200 * time.Millisecond
	rc.RetryWaitMax = 10 * time.Second
	rc.HTTPClient = &http.Client{}
	// Hand back the final answer after the last retry, so its error body
	// reaches the caller.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: rc}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithToken returns a copy of c that uses token (a runner switches to its
// machine token after registering).
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// APIError is an error answer from the provisioner.
type APIError struct {
	// Method and URL are the request that was answered.
	Method, URL string
	Status      int
	// Body is the provisioner's error answer (code, message, field).
	Body Error
}

// Error renders the request, then the status, code, field and message:
// "PUT http://…/api/v1/pools/p: 400 InvalidRequest: maxCapacity: …".
func (e *APIError) Error() string {
	call := ""
	if e.Method != "" {
		call = e.Method + " " + e.URL + ": "
	}
	if e.Body.Field != "" && !strings.HasPrefix(e.Body.Message, e.Body.Field) {
		return fmt.Sprintf("%s%d %s: %s: %s", call, e.Status, e.Body.Code, e.Body.Field, e.Body.Message)
	}
	return fmt.Sprintf("%s%d %s: %s", call, e.Status, e.Body.Code, e.Body.Message)
}

// StatusOf returns the HTTP status of an *APIError, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to discard).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		var b []byte
		switch v := in.(type) {
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(in); err != nil {
				return fmt.Errorf("encode %s %s: %w", method, path, err)
			}
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.operator != "" {
		req.Header.Set("X-Labrunner-Operator", c.operator)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Method: method, URL: c.base + path, Status: resp.StatusCode}
		if json.Unmarshal(data, &ae.Body) != nil || ae.Body.Message == "" {
			ae.Body = Error{Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return ae
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// Register registers a machine; use the returned MachineToken (WithToken)
// for the machine's own endpoints.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (*RegisterResponse, error) {
	var out RegisterResponse
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/register", nil, req, &out)
}

// Heartbeat reports the machine's state; the answer carries directives
// with ID > after.
func (c *Client) Heartbeat(ctx context.Context, machineID string, after int64, hb HeartbeatRequest) (*HeartbeatResponse, error) {
	var out HeartbeatResponse
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/heartbeat", q, hb, &out)
}

// Directives long-polls up to wait for directives with ID > after,
// acknowledging those <= after.
func (c *Client) Directives(ctx context.Context, machineID string, after int64, wait time.Duration) ([]Directive, error) {
	var out DirectivesResponse
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {wait.String()}}
	if err := c.do(ctx, http.MethodGet, "/api/v1/machines/"+esc(machineID)+"/directives", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Directives, nil
}

// ListMachines lists machines, all or those of pool.
func (c *Client) ListMachines(ctx context.Context, pool string) ([]Machine, error) {
	var out MachineList
	q := url.Values{}
	if pool != "" {
		q.Set("pool", pool)
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/machines", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Machines, nil
}

// GetMachine shows a machine and its recorded actions.
func (c *Client) GetMachine(ctx context.Context, machineID string) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodGet, "/api/v1/machines/"+esc(machineID), nil, nil, &out)
}

// Quarantine quarantines a machine until the given time.
func (c *Client) Quarantine(ctx context.Context, machineID, reason string, until time.Time) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/quarantine", nil, QuarantineRequest{Reason: reason, Until: until.UTC()}, &out)
}

// Unquarantine lifts a machine's quarantine.
func (c *Client) Unquarantine(ctx context.Context, machineID, reason string) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/machines/"+esc(machineID)+"/quarantine", nil, ActionRequest{Reason: reason}, &out)
}

// Reboot asks a machine to reboot once its task is done.
func (c *Client) Reboot(ctx context.Context, machineID, reason string) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/reboot", nil, ActionRequest{Reason: reason}, &out)
}

// Drain asks a machine to stop claiming work.
func (c *Client) Drain(ctx context.Context, machineID, reason string) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/drain", nil, ActionRequest{Reason: reason}, &out)
}

// Assign moves a machine to pool (it drains first).
func (c *Client) Assign(ctx context.Context, machineID, pool, reason string) (*MachineDetail, error) {
	var out MachineDetail
	return &out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+esc(machineID)+"/assign", nil, AssignRequest{PoolID: pool, Reason: reason}, &out)
}

// ListPools lists pools.
func (c *Client) ListPools(ctx context.Context) ([]Pool, error) {
	var out PoolList
	if err := c.do(ctx, http.MethodGet, "/api/v1/pools", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Pools, nil
}

// GetPool shows a pool.
func (c *Client) GetPool(ctx context.Context, poolID string) (*Pool, error) {
	var out Pool
	return &out, c.do(ctx, http.MethodGet, "/api/v1/pools/"+esc(poolID), nil, nil, &out)
}

// PutPool creates or replaces a pool.
func (c *Client) PutPool(ctx context.Context, poolID string, spec PoolSpec) (*Pool, error) {
	var out Pool
	return &out, c.do(ctx, http.MethodPut, "/api/v1/pools/"+esc(poolID), nil, spec, &out)
}

// PutPoolJSON creates or replaces a pool from a raw JSON spec, so that the
// server, not the client, reports unknown fields (pools apply -f).
func (c *Client) PutPoolJSON(ctx context.Context, poolID string, spec json.RawMessage) (*Pool, error) {
	var out Pool
	return &out, c.do(ctx, http.MethodPut, "/api/v1/pools/"+esc(poolID), nil, spec, &out)
}

// DeletePool deletes a pool.
func (c *Client) DeletePool(ctx context.Context, poolID string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/pools/"+esc(poolID), nil, nil, nil)
}

// Sizing returns a pool's sizing figures and recommendation.
func (c *Client) Sizing(ctx context.Context, poolID string) (*Sizing, error) {
	var out Sizing
	return &out, c.do(ctx, http.MethodGet, "/api/v1/pools/"+esc(poolID)+"/sizing", nil, nil, &out)
}

// CreateToken creates an admin, read-only or enrollment token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	var out TokenResponse
	return &out, c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out)
}
