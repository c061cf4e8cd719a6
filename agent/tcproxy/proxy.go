package tcproxy

// One Proxy per task:
//
//	Start ──listen 127.0.0.1:0, draw a secret──▶ serving ──SetCredentials (reclaim) / PUT /credentials──▶ serving
//	                                 └─ Close ──▶ closed: the port is released, requests in flight end
//
// Any local account can connect to 127.0.0.1, and with capacity above one
// another task runs beside this one: the proxy therefore answers only
// requests whose path starts with the run's secret, which is in the URL
// handed to the task (TASKCLUSTER_PROXY_URL) and nowhere else. Clients
// join their paths to that URL, so they need no change.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// Config configures a Proxy.
type Config struct {
	// RootURL is the deployment the requests go to.
	RootURL string
	// Credentials sign the requests; AuthorizedScopes in them restrict
	// what the task may do (generic-worker passes the task's scopes plus
	// queue:create-artifact:<taskId>/<runId>).
	Credentials tcclient.Credentials
	// Version is sent as X-Taskcluster-Proxy-Version.
	Version string
	// Logger receives the proxy's own logs (default slog.Default()).
	Logger *slog.Logger
	// RetryMax is how many times a request is retried on a connection
	// error or a 5xx answer (default 5); the task's own client may retry
	// more.
	RetryMax int
}

// Proxy is a running taskcluster-proxy for one task.
type Proxy struct {
	rootURL string
	version string
	log     *slog.Logger
	client  *retryablehttp.Client

	mu    sync.RWMutex
	creds tcclient.Credentials

	// secret is the first path segment every request must carry.
	secret string

	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Start listens on a random port of 127.0.0.1 and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	if cfg.RootURL == "" {
		return nil, errors.New("tcproxy: Config.RootURL is empty; give the deployment's root URL")
	}
	if cfg.Credentials.ClientID == "" || cfg.Credentials.AccessToken == "" {
		return nil, errors.New("tcproxy: Config.Credentials has no clientId or accessToken; give the run's temporary credentials")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 5
	}
	if _, err := cfg.Credentials.Cert(); err != nil {
		return nil, fmt.Errorf("tcproxy: credentials certificate: %w", err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("tcproxy: draw the proxy's secret: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcproxy: listen on 127.0.0.1: %w", err)
	}
	p := &Proxy{
		secret:  hex.EncodeToString(secret),
		rootURL: strings.TrimRight(cfg.RootURL, "/"),
		version: cfg.Version,
		log:     cfg.Logger,
		creds:   cfg.Credentials,
		ln:      ln,
		done:    make(chan struct{}),
	}
	p.client = newForwardClient(p, cfg.RetryMax)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("taskcluster-proxy stopped serving", "address", ln.Addr().String(), "error", err)
		}
	}()
	return p, nil
}

// URL is the proxy's base URL with its secret, for TASKCLUSTER_PROXY_URL
// only: logs show Addr.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() + "/" + p.secret }

// Addr is the address the proxy listens on, safe to log.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetCredentials replaces the signing credentials (after a reclaim); the
// authorized scopes stay those the proxy started with.
func (p *Proxy) SetCredentials(c tcclient.Credentials) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creds.ClientID = c.ClientID
	p.creds.AccessToken = c.AccessToken
	p.creds.Certificate = c.Certificate
}

// credentials is a copy of the current credentials.
func (p *Proxy) credentials() tcclient.Credentials {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c := p.creds
	c.AuthorizedScopes = append([]string(nil), p.creds.AuthorizedScopes...)
	if p.creds.AuthorizedScopes == nil {
		c.AuthorizedScopes = nil
	}
	return c
}

// Close stops serving, ending requests in flight after a short grace.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = p.srv.Close()
	}
	<-p.done
	if err != nil {
		return fmt.Errorf("tcproxy: close %s: %w", p.ln.Addr(), err)
	}
	return nil
}

// ServeHTTP checks the secret, then routes as upstream's
// Routes.ServeHTTP does, by path prefix.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := p.withoutSecret(r.URL.EscapedPath())
	if !ok {
		// Said the same way whatever was wrong, and nothing is forwarded.
		http.Error(w, "taskcluster-proxy: the path does not start with this run's secret; use $TASKCLUSTER_PROXY_URL as given to the task", http.StatusForbidden)
		return
	}
	if r.URL.Path = strings.TrimPrefix(r.URL.Path, "/"+p.secret); r.URL.Path == "" {
		r.URL.Path = "/"
	}
	if r.URL.RawPath != "" {
		r.URL.RawPath = path
	}
	switch {
	case strings.HasPrefix(path, "/bewit"):
		p.serveBewit(w, r)
	case strings.HasPrefix(path, "/credentials"):
		p.serveCredentials(w, r)
	case strings.HasPrefix(path, "/api"):
		p.serveAPI(w, r)
	default:
		p.serveLegacy(w, r)
	}
}

// withoutSecret returns the escaped path after the secret segment, and
// whether the path started with it (compared in constant time).
func (p *Proxy) withoutSecret(escaped string) (string, bool) {
	seg, rest, _ := strings.Cut(strings.TrimPrefix(escaped, "/"), "/")
	if subtle.ConstantTimeCompare([]byte(seg), []byte(p.secret)) != 1 {
		return "", false
	}
	return "/" + rest, true
}

// setHeaders sets the X-Taskcluster-Proxy-* headers upstream sends with
// every answer; false means the credentials are unusable (answered 500).
func (p *Proxy) setHeaders(w http.ResponseWriter) bool {
	c := p.credentials()
	h := w.Header()
	h.Set("X-Taskcluster-Proxy-Version", p.version)
	cert, err := c.Cert()
	if err != nil {
		http.Error(w, "Taskcluster Proxy has an invalid certificate: "+err.Error(), http.StatusInternalServerError)
		return false
	}
	if cert == nil {
		h.Set("X-Taskcluster-Proxy-Perm-ClientId", c.ClientID)
	} else {
		h.Set("X-Taskcluster-Proxy-Temp-ClientId", c.ClientID)
		if b, err := json.Marshal(cert.Scopes); err == nil {
			h.Set("X-Taskcluster-Proxy-Temp-Scopes", string(b))
		}
	}
	if c.AuthorizedScopes != nil {
		if b, err := json.Marshal(c.AuthorizedScopes); err == nil {
			h.Set("X-Taskcluster-Authorized-Scopes", string(b))
		}
	}
	return true
}
