//go:build linux

package benchcompare

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// countingProxy stands between one worker and the dev queue and counts the
// requests the worker makes: the load a worker adds to the queue.
type countingProxy struct {
	srv      *httptest.Server
	requests atomic.Int64
}

// newCountingProxy forwards to the dev queue at rootURL.
func newCountingProxy(t testing.TB, rootURL string) *countingProxy {
	t.Helper()
	target, err := url.Parse(rootURL)
	if err != nil {
		t.Fatalf("dev queue root URL %q: %v", rootURL, err)
	}
	c := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// rate counts the requests made over window and returns them per second.
func (c *countingProxy) rate(window time.Duration) float64 {
	n0, t0 := c.requests.Load(), time.Now()
	time.Sleep(window)
	return float64(c.requests.Load()-n0) / time.Since(t0).Seconds()
}
