package faultproxy

// A Proxy forwards every request to its upstream, keeping the Host header
// (Hawk signatures cover it), unless a fault applies:
//
//	cut ──────────────▶ every connection reset as soon as it is accepted; open ones reset
//	request ──draw < FailRate──▶ one of Modes: status (answered, not forwarded),
//	   │                          reset-before (not forwarded), reset-after (forwarded,
//	   │                          the answer thrown away and the connection reset)
//	   └──draw < SlowRate──▶ held SlowMin..SlowMax, then forwarded
//	   └──otherwise──────▶ forwarded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// FailMode is one way a failing request fails.
type FailMode int

const (
	// FailStatus answers Faults.Status without forwarding the request.
	FailStatus FailMode = iota
	// FailResetBefore resets the connection without forwarding the request.
	FailResetBefore
	// FailResetAfter forwards the request, then resets the connection
	// instead of relaying the answer: the service acted, the client cannot
	// know it.
	FailResetAfter
)

// Faults is what a Proxy does to requests while it is not cut.
type Faults struct {
	// FailRate is the fraction (0..1) of requests that fail.
	FailRate float64
	// Modes are the ways a failing request fails, drawn evenly; empty
	// means FailStatus only.
	Modes []FailMode
	// Status is the answer of FailStatus (default 503).
	Status int
	// SlowRate is the fraction (0..1) of the other requests held before
	// they are forwarded, for a time drawn between SlowMin and SlowMax.
	SlowRate         float64
	SlowMin, SlowMax time.Duration
}

// Counts is what a Proxy did since it started.
type Counts struct {
	// Requests is every request received.
	Requests int64
	// Forwarded is every request passed to the upstream (including those
	// failed by FailResetAfter).
	Forwarded int64
	// Status, ResetBefore and ResetAfter count the failed requests by mode.
	Status, ResetBefore, ResetAfter int64
	// Slowed counts the requests held before forwarding.
	Slowed int64
	// Cuts counts calls to Cut; Dropped the connections open at a cut and
	// reset by it; Refused the connections reset on arrival during a cut.
	Cuts, Dropped, Refused int64
}

// Failed is the number of requests failed in any mode.
func (c Counts) Failed() int64 { return c.Status + c.ResetBefore + c.ResetAfter }

// String renders the counts on one line for test output.
func (c Counts) String() string {
	return fmt.Sprintf("%d requests: %d forwarded, %d failed (%d status, %d reset before, %d reset after), %d slowed; %d cuts dropping %d connections and refusing %d",
		c.Requests, c.Forwarded, c.Failed(), c.Status, c.ResetBefore, c.ResetAfter, c.Slowed, c.Cuts, c.Dropped, c.Refused)
}

// Proxy is a fault-injecting reverse proxy on a local TCP address.
type Proxy struct {
	addr     string
	upstream *url.URL
	server   *http.Server
	rp       *httputil.ReverseProxy

	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	faults Faults
	rng    *rand.Rand
	served chan struct{}

	requests, forwarded, status, resetBefore, resetAfter, slowed, cuts, dropped, refused atomic.Int64
}

// quiet drops the HTTP server's and reverse proxy's own logs: every
// injected fault would otherwise be logged as an error.
var quiet = log.New(io.Discard, "", 0)

// errResetAfter marks an answer the proxy throws away.
var errResetAfter = errors.New("faultproxy: answer dropped")

// New starts a Proxy to upstream (an http:// base URL) on a free port of
// 127.0.0.1; seed makes its random draws repeatable.
func New(upstream string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an http:// URL", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		addr:     ln.Addr().String(),
		upstream: u,
		conns:    map[net.Conn]struct{}{},
		served:   make(chan struct{}),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(p.upstream)
			r.Out.Host = r.In.Host
		},
		Transport:     &dropTransport{base: http.DefaultTransport.(*http.Transport).Clone()},
		FlushInterval: -1,
		ErrorLog:      quiet,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errResetAfter) {
				reset(w)
				return
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.server = &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ConnState: p.connState, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quiet}
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln) // returns at Close
	}()
	return p, nil
}

// URL is the proxy's base URL, to give clients in place of the upstream's.
func (p *Proxy) URL() string { return "http://" + p.addr }

// SetFaults replaces the faults applied to the next requests.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// Cut makes the upstream unreachable through the proxy: open connections
// are reset, and so is every new one as soon as it is accepted, until
// Restore. The listener stays open: giving its port up during a cut would
// let another socket of the machine take it.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.cuts.Add(1)
	for c := range p.conns {
		resetConn(c)
		delete(p.conns, c)
		p.dropped.Add(1)
	}
}

// Restore ends a cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Counts returns what the proxy did so far.
func (p *Proxy) Counts() Counts {
	return Counts{
		Requests: p.requests.Load(), Forwarded: p.forwarded.Load(),
		Status: p.status.Load(), ResetBefore: p.resetBefore.Load(), ResetAfter: p.resetAfter.Load(),
		Slowed: p.slowed.Load(), Cuts: p.cuts.Load(), Dropped: p.dropped.Load(), Refused: p.refused.Load(),
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.server.Close()
	<-p.served
	return err
}

func (p *Proxy) connState(c net.Conn, st http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch st {
	case http.StateNew:
		if p.cut {
			resetConn(c)
			p.refused.Add(1)
			return
		}
		p.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	}
}

// verdict is what happens to one request.
type verdict struct {
	fail bool
	mode FailMode
	slow time.Duration
}

func (p *Proxy) draw() (verdict, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	var v verdict
	if f.FailRate > 0 && p.rng.Float64() < f.FailRate {
		v.fail = true
		if len(f.Modes) > 0 {
			v.mode = f.Modes[p.rng.IntN(len(f.Modes))]
		}
	} else if f.SlowRate > 0 && p.rng.Float64() < f.SlowRate {
		v.slow = f.SlowMin
		if f.SlowMax > f.SlowMin {
			v.slow += time.Duration(p.rng.Int64N(int64(f.SlowMax - f.SlowMin)))
		}
	}
	status := f.Status
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	return v, status
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	v, status := p.draw()
	if v.fail {
		switch v.mode {
		case FailResetBefore:
			p.resetBefore.Add(1)
			reset(w)
			return
		case FailResetAfter:
			p.resetAfter.Add(1)
			p.forwarded.Add(1)
			p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), dropKey{}, true)))
			return
		default:
			p.status.Add(1)
			http.Error(w, "faultproxy: injected failure", status)
			return
		}
	}
	if v.slow > 0 {
		p.slowed.Add(1)
		t := time.NewTimer(v.slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	p.forwarded.Add(1)
	p.rp.ServeHTTP(w, r)
}

// dropKey marks a request whose answer is thrown away.
type dropKey struct{}

// dropTransport forwards every request; for one marked with dropKey it
// reads and discards the answer and returns errResetAfter.
type dropTransport struct{ base http.RoundTripper }

func (d *dropTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(r)
	if err != nil || r.Context().Value(dropKey{}) == nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, errResetAfter
}

// reset closes the client's connection with a TCP reset, or just closes
// it when the connection cannot be taken over.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	resetConn(c)
}

// resetConn closes c with a TCP reset (no linger), as a peer that went
// away does.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
