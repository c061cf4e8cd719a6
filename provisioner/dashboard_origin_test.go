package provisioner

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// browserAt is a browser that reaches e's dashboard through ts (its TLS
// certificate trusted), sending ts's origin with its forms.
func (e *dashEnv) browserAt(ts *httptest.Server) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	at := *e.env
	at.url = ts.URL
	return &browser{e: &dashEnv{env: &at, hostileID: e.hostileID}, c: &c, origin: ts.URL}
}

// oneCookie is the only cookie resp sets.
func oneCookie(t *testing.T, what string, resp *http.Response) *http.Cookie {
	t.Helper()
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("%s set %d cookies (%v), want 1", what, len(cs), cs)
	}
	return cs[0]
}

// wantCookie checks a dashboard cookie's name and attributes: over https
// __Host-name, Secure, Path=/; otherwise name on /dashboard, not Secure;
// HttpOnly, SameSite=Lax and no Domain either way.
func wantCookie(t *testing.T, c *http.Cookie, name string, secure bool) {
	t.Helper()
	wantName, wantPath := name, "/dashboard"
	if secure {
		wantName, wantPath = hostCookiePrefix+name, "/"
	}
	if c.Name != wantName || c.Secure != secure || c.Path != wantPath || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %s: Secure=%v Path=%q Domain=%q HttpOnly=%v SameSite=%v; want %s, Secure=%v, Path=%s, no Domain, HttpOnly, SameSite=Lax",
			c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly, c.SameSite, wantName, secure, wantPath)
	}
}

// signInAndAct signs b in as an admin, checks the session and flash
// cookies' attributes, quarantines lx-bb and sees the outcome; it returns
// the session's form token.
func signInAndAct(t *testing.T, b *browser, secure bool) string {
	t.Helper()
	resp, body := b.do("POST", "/dashboard/login", url.Values{"token": {testAdminToken}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	wantCookie(t, oneCookie(t, "sign-in", resp), sessionCookie, secure)
	resp, page := b.do("GET", "/dashboard", nil, nil)
	csrf := csrfIn(page)
	if resp.StatusCode != http.StatusOK || csrf == "" {
		t.Fatalf("the page after sign-in: %d, form token %q", resp.StatusCode, csrf)
	}
	resp, _ = b.act(csrf, "quarantine", []string{"lx-bb"}, url.Values{"reason": {"r"}, "duration": {"1h"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("quarantine from the dashboard's own origin: %d, want 303", resp.StatusCode)
	}
	wantCookie(t, oneCookie(t, "an action", resp), flashCookie, secure)
	if _, page := b.do("GET", "/dashboard?pool=bb-linux", nil, nil); !strings.Contains(page, "quarantine done for lx-bb.") {
		t.Errorf("the outcome of the action is not shown:\n%s", flashOf(page))
	}
	return csrf
}

// TestDashboardCookiesOverHTTPS: over plain HTTP without
// dashboardPublicUrl (development) the cookies are as before; when the
// provisioner serves TLS, or stands behind a TLS-terminating proxy (so
// that it sees plain HTTP) with dashboardPublicUrl set to the proxy's
// https address, they are Secure, __Host- prefixed and on Path=/, and
// the session and the flash work through them.
func TestDashboardCookiesOverHTTPS(t *testing.T) {
	t.Run("plain HTTP", func(t *testing.T) {
		e := newDashEnv(t)
		signInAndAct(t, e.browser(), false)
	})
	t.Run("TLS listener", func(t *testing.T) {
		e := newDashEnv(t)
		ts := httptest.NewTLSServer(e.srv.Handler())
		t.Cleanup(ts.Close)
		signInAndAct(t, e.browserAt(ts), true)
	})
	t.Run("TLS proxy", func(t *testing.T) {
		e, front := behindTLSProxy(t, true)
		signInAndAct(t, e.browserAt(front), true)
	})
}

// behindTLSProxy starts the dashboard's test system behind a
// TLS-terminating reverse proxy, with dashboardPublicUrl set to the
// proxy's address. passHost: the proxy passes the browser's Host header
// through (otherwise the provisioner sees its own address).
func behindTLSProxy(t *testing.T, passHost bool) (*dashEnv, *httptest.Server) {
	t.Helper()
	var proxy atomic.Pointer[httputil.ReverseProxy]
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxy.Load().ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	e := newDashEnv(t, func(c *Config) { c.DashboardPublicURL = front.URL })
	back, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Store(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(back)
		if passHost {
			pr.Out.Host = pr.In.Host
		}
	}})
	return e, front
}

// TestDashboardPostsFromThePublicOrigin: behind a TLS-terminating proxy
// with dashboardPublicUrl https, a post is accepted only from exactly that
// origin: not from http:// on the same host and port (whatever Host header
// the proxy passes), not from a sibling host, and not from the
// provisioner's own plain address reached around the proxy.
func TestDashboardPostsFromThePublicOrigin(t *testing.T) {
	for _, passHost := range []bool{true, false} {
		t.Run(map[bool]string{true: "proxy passes Host", false: "proxy rewrites Host"}[passHost], func(t *testing.T) {
			e, front := behindTLSProxy(t, passHost)
			b := e.browserAt(front)
			csrf := signInAndAct(t, b, true)
			frontURL, _ := url.Parse(front.URL)
			plainFront := "http://" + frontURL.Host
			sibling := "https://evil.lab.example.com"
			quarantine := url.Values{"reason": {"forged"}, "duration": {"1h"}}
			for _, c := range []struct {
				name string
				hdr  map[string]string
				want string
			}{
				{"http:// Origin, same host and port", map[string]string{"Origin": plainFront}, plainFront + ", not from this dashboard (" + front.URL + ")"},
				{"http:// Referer, no Origin", map[string]string{"Origin": "", "Referer": plainFront + "/dashboard"}, "a page of " + plainFront + ", not from this dashboard (" + front.URL + ")"},
				{"sibling host", map[string]string{"Origin": sibling}, sibling + ", not from this dashboard (" + front.URL + ")"},
				{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site: same-site"},
			} {
				nb := *b
				if o, ok := c.hdr["Origin"]; ok {
					nb.origin = o
				}
				resp, body := nb.act(csrf, "quarantine", []string{"win-tc"}, quarantine, c.hdr)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, c.want) {
					t.Errorf("%s: %d, want 403 saying %s\n%s", c.name, resp.StatusCode, c.want, body)
				}
			}
			// The provisioner's own plain-HTTP address, with the session
			// cookie, from a page on that address.
			u, _ := url.Parse(front.URL + "/dashboard")
			req, err := http.NewRequest("POST", e.url+"/dashboard/actions", strings.NewReader(url.Values{"csrf": {csrf}, "action": {"quarantine"},
				"machine": {"win-tc"}, "reason": {"around the proxy"}, "duration": {"1h"}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.url)
			for _, c := range b.c.Jar.Cookies(u) {
				req.AddCookie(c)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("a post to the provisioner's own address from a page there: %d, want 403", resp.StatusCode)
			}
			if m, err := e.srv.store.GetMachine(e.ctx(), "win-tc"); err != nil || m.QuarantinedUntil != nil {
				t.Errorf("refused posts quarantined win-tc: %v, %v", m.QuarantinedUntil, err)
			}
		})
	}
}

// TestDashboardPublicURLChecked: a dashboardPublicUrl that is not an
// origin browsers could open is refused at start, naming the setting;
// a good one is read as its origin.
func TestDashboardPublicURLChecked(t *testing.T) {
	for _, bad := range []string{"prov.lab.example.com", "ftp://prov.lab.example.com", "https://", "https://ops:pw@prov.lab.example.com",
		"https://prov.lab.example.com/prov", "https://prov.lab.example.com/?x=1", "https://prov.lab.example.com/#top", "https://prov.lab.example.com:port"} {
		if _, err := parseDashboardURL(bad); err == nil || !strings.Contains(err.Error(), "dashboardPublicUrl") {
			t.Errorf("dashboardPublicUrl %q: %v, want an error naming dashboardPublicUrl", bad, err)
		}
	}
	if _, err := New(Config{DB: sqliteURL(t), DashboardPublicURL: "prov.lab.example.com:443"}); err == nil || !strings.Contains(err.Error(), "dashboardPublicUrl") {
		t.Errorf("New with a bad dashboardPublicUrl: %v", err)
	}
	for raw, want := range map[string]string{
		"https://Prov.Lab.Example.com":                "https://prov.lab.example.com",
		"https://prov.lab.example.com:443/":           "https://prov.lab.example.com",
		"https://prov.lab.example.com/dashboard":      "https://prov.lab.example.com",
		"https://prov.lab.example.com:8443/dashboard": "https://prov.lab.example.com:8443",
		"http://127.0.0.1:8080":                       "http://127.0.0.1:8080",
		"https://[::1]:443":                           "https://[::1]",
		"https://[::1]:8443":                          "https://[::1]:8443",
	} {
		o, err := parseDashboardURL(raw)
		if err != nil || o.String() != want {
			t.Errorf("dashboardPublicUrl %q read as %v (%v), want %s", raw, o, err, want)
		}
	}
	// An Origin header names the default port or not; both are the same origin.
	s := &Server{}
	s.dashOrigin, _ = parseDashboardURL("https://prov.lab.example.com")
	for origin, same := range map[string]bool{"https://prov.lab.example.com": true, "https://PROV.lab.example.com:443": true,
		"http://prov.lab.example.com": false, "https://prov.lab.example.com:8443": false, "https://lab.example.com": false, "null": false} {
		if got := s.fromDashboard(origin, httptest.NewRequest("POST", "/dashboard/actions", nil)); got != same {
			t.Errorf("Origin %s: same origin = %v, want %v", origin, got, same)
		}
	}
}

// TestWarnInsecureDashboard: a provisioner that serves the dashboard in
// clear beyond loopback says so at start; one on loopback, behind TLS, or
// with an https public URL does not.
func TestWarnInsecureDashboard(t *testing.T) {
	any4 := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	for _, c := range []struct {
		name      string
		addr      net.Addr
		tls       bool
		publicURL string
		warn      string
	}{
		{"plain, all interfaces", any4, false, "", "dashboardPublicUrl is not set"},
		{"plain, loopback", lo, false, "", ""},
		{"TLS, all interfaces", any4, true, "", ""},
		{"plain behind an https proxy", any4, false, "https://prov.lab.example.com", ""},
		{"http public URL", any4, false, "http://prov.lab.example.com", "plain http"},
		{"http public URL on loopback", lo, false, "http://127.0.0.1:8080", ""},
		{"http public URL, TLS listener", any4, true, "http://prov.lab.example.com", "serves TLS"},
	} {
		var buf bytes.Buffer
		s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
		var err error
		if s.dashOrigin, err = parseDashboardURL(c.publicURL); err != nil {
			t.Fatal(err)
		}
		s.WarnInsecureDashboard(c.addr, c.tls)
		logged := buf.String()
		if c.warn == "" && logged != "" || c.warn != "" && (!strings.Contains(logged, "level=WARN") || !strings.Contains(logged, c.warn)) {
			t.Errorf("%s: logged %q, want a warning saying %q", c.name, logged, c.warn)
		}
	}
}
