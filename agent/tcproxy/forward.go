package tcproxy

// Forwarding: the task's request ──target URL from the path──▶ body read
// once ──each attempt: sign with the current credentials──▶ deployment
// ──retry on connection errors and 5xx──▶ the answer, headers and status
// as they came, streamed back to the task. Redirects are not followed:
// the task gets the 303 (an artifact's signed URL) as upstream's does.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
	tcurls "github.com/taskcluster/taskcluster-lib-urls"
)

// MaxBodyBytes bounds a request body the proxy forwards.
const MaxBodyBytes = 32 << 20

// apiPath is upstream's routes.go pattern, applied to the escaped path.
var apiPath = regexp.MustCompile(`^/api/([^/]*)/([^/]*)/(.*)$`)

// servicePattern is a service name of the older /<service>/<version>/…
// form. Upstream also accepts a host name with dots there and forwards to
// https://<host>/; labrunner does not (see docs/payload.md).
var servicePattern = regexp.MustCompile(`^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$`)

// hopHeaders are connection-level headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *Proxy) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !p.setHeaders(w) {
		return
	}
	m := apiPath.FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		http.Error(w, "Invalid /api path: use /api/<service>/<version>/<path>", http.StatusNotFound)
		return
	}
	target, err := url.Parse(tcurls.API(p.rootURL, m[1], m[2], m[3]+withQuery(r.URL.RawQuery)))
	if err != nil {
		http.Error(w, fmt.Sprintf("Invalid /api path: %v", err), http.StatusNotFound)
		return
	}
	p.forward(w, r, target)
}

// serveLegacy serves /<service>/<version>/<path>, upstream's RootHandler.
func (p *Proxy) serveLegacy(w http.ResponseWriter, r *http.Request) {
	if !p.setHeaders(w) {
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/", 3)
	if !servicePattern.MatchString(parts[0]) || len(parts) < 2 {
		http.Error(w, fmt.Sprintf("Unknown taskcluster service: %q is not a service of this deployment; use %s/api/<service>/<version>/<path>", parts[0], p.URL()), http.StatusNotFound)
		return
	}
	rest := ""
	if len(parts) == 3 {
		rest = parts[2]
	}
	target, err := url.Parse(tcurls.API(p.rootURL, parts[0], parts[1], rest+withQuery(r.URL.RawQuery)))
	if err != nil {
		http.Error(w, fmt.Sprintf("Unknown taskcluster service: %v", err), http.StatusNotFound)
		return
	}
	p.forward(w, r, target)
}

func withQuery(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}

// forward signs and sends the request to target and copies the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, target *url.URL) {
	w.Header().Set("X-Taskcluster-Endpoint", target.String())
	p.log.Debug("taskcluster-proxy request", "method", r.Method, "endpoint", target.String())
	// The body is held for retries; a bound keeps a task from filling the
	// agent's memory (Taskcluster API bodies are small JSON documents).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("Request body over %d bytes: Taskcluster API requests are small JSON documents; upload large content to the URL the API hands out instead", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("Failed to generate proxy request (could not read http body) - %v", err), http.StatusInternalServerError)
		return
	}
	req, err := retryablehttp.NewRequestWithContext(r.Context(), r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, fmt.Sprintf("Error constructing request: %v", err), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Header.Del("Authorization")
	if _, ok := r.Header["Content-Type"]; !ok && len(body) != 0 {
		// As upstream: Taskcluster services expect JSON bodies.
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("Failed during proxy request to %s: %v", target.Redacted(), err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		p.log.Debug("taskcluster-proxy: copy answer to the task", "endpoint", target.String(), "error", err)
	}
}

// newForwardClient retries as client-go does (connection errors, 5xx) and
// signs each attempt afresh, since a Hawk signature carries its time.
func newForwardClient(p *Proxy, retryMax int) *retryablehttp.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{
		Transport: signingTransport{p: p, base: base},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	c.RetryMax = retryMax
	c.Logger = nil
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err() // the task hung up
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return c
}

// signingTransport signs each request with the proxy's current credentials.
type signingTransport struct {
	p    *Proxy
	base http.RoundTripper
}

// RoundTrip signs a copy of req and sends it.
func (t signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	creds := t.p.credentials()
	signed := req.Clone(req.Context())
	if err := creds.SignRequest(signed); err != nil {
		return nil, fmt.Errorf("sign request to %s: %w", req.URL.Redacted(), err)
	}
	return t.base.RoundTrip(signed)
}
