package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// upstream counts the requests it served and echoes the Host header.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.WriteString(w, r.Host)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func newProxy(t *testing.T, up string, seed uint64) *Proxy {
	p, err := New(up, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// get is one request on a fresh connection (no retries, no reuse).
func get(p *Proxy) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(p.URL() + "/x")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestForwardsKeepingHost(t *testing.T) {
	up, n := upstream(t)
	p := newProxy(t, up.URL, 1)
	code, body, err := get(p)
	if err != nil || code != 200 {
		t.Fatalf("get: %d %v", code, err)
	}
	if want := p.URL()[len("http://"):]; body != want {
		t.Errorf("upstream saw Host %q, want the proxy's %q (signatures cover it)", body, want)
	}
	if n.Load() != 1 || p.Counts().Forwarded != 1 || p.Counts().Failed() != 0 {
		t.Errorf("upstream served %d, counts %s", n.Load(), p.Counts())
	}
}

func TestCutResetsAndRestoreServesAgain(t *testing.T) {
	up, n := upstream(t)
	p := newProxy(t, up.URL, 1)
	p.Cut()
	if _, _, err := get(p); err == nil {
		t.Fatal("request through a cut proxy succeeded")
	}
	p.Restore()
	if code, _, err := get(p); err != nil || code != 200 {
		t.Fatalf("after restore: %d %v", code, err)
	}
	if c := p.Counts(); n.Load() != 1 || c.Cuts != 1 || c.Refused != 1 {
		t.Errorf("upstream served %d, counts %s; want 1 and 1 cut refusing 1 connection", n.Load(), c)
	}
}

// Each mode fails as it says: status and reset-before never reach the
// upstream, reset-after does but the client gets no answer.
func TestFailModes(t *testing.T) {
	for _, tc := range []struct {
		mode        FailMode
		reached     int64
		wantErr     bool
		wantCode    int
		countsField func(Counts) int64
	}{
		{FailStatus, 0, false, 503, func(c Counts) int64 { return c.Status }},
		{FailResetBefore, 0, true, 0, func(c Counts) int64 { return c.ResetBefore }},
		{FailResetAfter, 1, true, 0, func(c Counts) int64 { return c.ResetAfter }},
	} {
		up, n := upstream(t)
		p := newProxy(t, up.URL, 1)
		p.SetFaults(Faults{FailRate: 1, Modes: []FailMode{tc.mode}})
		code, _, err := get(p)
		if (err != nil) != tc.wantErr || code != tc.wantCode {
			t.Errorf("mode %d: got %d, %v; want code %d, error %v", tc.mode, code, err, tc.wantCode, tc.wantErr)
		}
		if n.Load() != tc.reached || tc.countsField(p.Counts()) != 1 {
			t.Errorf("mode %d: upstream served %d (want %d), counts %s", tc.mode, n.Load(), tc.reached, p.Counts())
		}
	}
}

// The same seed fails the same requests; the rates are roughly kept.
func TestSeededRates(t *testing.T) {
	up, _ := upstream(t)
	pattern := func(seed uint64) []bool {
		p := newProxy(t, up.URL, seed)
		p.SetFaults(Faults{FailRate: 0.2, SlowRate: 0.1, SlowMin: time.Millisecond, SlowMax: 2 * time.Millisecond})
		var out []bool
		for i := 0; i < 200; i++ {
			code, _, err := get(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, code == 503)
		}
		c := p.Counts()
		if c.Status < 20 || c.Status > 60 || c.Slowed < 5 || c.Slowed > 40 {
			t.Errorf("seed %d: %s; want about 40 failed and 16 slowed of 200", seed, c)
		}
		return out
	}
	a, b := pattern(7), pattern(7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d failed differently with the same seed", i)
		}
	}
}

// A cut also resets the connections already open: a client keeping one
// alive gets an error, not an answer from beyond the cut.
func TestCutDropsOpenConnections(t *testing.T) {
	up, n := upstream(t)
	p := newProxy(t, up.URL, 1)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	resp, err := c.Get(p.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	p.Cut()
	if resp, err := c.Get(p.URL() + "/x"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a kept-alive connection went through a cut")
	}
	if c := p.Counts(); n.Load() != 1 || c.Dropped != 1 {
		t.Errorf("upstream served %d, counts %s; want 1 and 1 dropped connection", n.Load(), c)
	}
}
