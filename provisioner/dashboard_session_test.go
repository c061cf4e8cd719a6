package provisioner

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDashboardSecretSharedByReplicas: replicas on one database with the
// same dashboardSecret accept each other's sign-ins and form tokens; a
// replica with another secret (or none: a random key) does not; a short
// secret is refused at start, naming the setting.
func TestDashboardSecretSharedByReplicas(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-shared"
	db := sqliteURL(t)
	replica := func(secret string) *dashEnv {
		return &dashEnv{env: newEnv(t, db, func(c *Config) { c.DashboardSecret = secret })}
	}
	a, b, other, random := replica(secret), replica(secret), replica(secret+"-other"), replica("")
	a.pool("tc-win", tcPool("proj/win11", 0, 10, 0, "windows"))

	signedIn := a.browser()
	csrf := signedIn.login(testAdminToken, "alice")
	if csrf == "" {
		t.Fatal("no form token after sign-in")
	}
	for name, c := range map[string]struct {
		e    *dashEnv
		want int
	}{"same secret": {b, http.StatusOK}, "other secret": {other, http.StatusSeeOther}, "no secret": {random, http.StatusSeeOther}} {
		// The same browser (cookie jar), pointed at another replica.
		br := &browser{e: c.e, c: signedIn.c, origin: c.e.url}
		copyCookies(t, signedIn, br)
		resp, page := br.do("GET", "/dashboard", nil, nil)
		if resp.StatusCode != c.want {
			t.Errorf("%s: GET /dashboard with replica A's session: %d, want %d", name, resp.StatusCode, c.want)
		}
		if c.want == http.StatusOK && csrfIn(page) != csrf {
			t.Errorf("%s: the form token differs between replicas", name)
		}
	}
	if _, err := New(Config{DB: sqliteURL(t), DashboardSecret: "short"}); err == nil || !strings.Contains(err.Error(), "dashboardSecret") {
		t.Errorf("a short dashboardSecret: %v, want an error naming dashboardSecret", err)
	}
}

// copyCookies gives to's host the cookies from's jar holds for its own.
func copyCookies(t *testing.T, from, to *browser) {
	t.Helper()
	src, err := url.Parse(from.e.url + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := url.Parse(to.e.url + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	var cs []*http.Cookie
	for _, c := range from.c.Jar.Cookies(src) {
		cs = append(cs, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/dashboard"})
	}
	to.c.Jar.SetCookies(dst, cs)
}

// TestDashboardSignOutEndsSession: sign-out ends the session on the
// server, on every replica sharing the database: a copy of its cookie
// taken before (from another browser, a proxy's log) no longer opens a
// page nor posts a form. A second sign-in in the same browser gets a new
// session.
func TestDashboardSignOutEndsSession(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-shared"
	db := sqliteURL(t)
	a := &dashEnv{env: newEnv(t, db, func(c *Config) { c.DashboardSecret = secret })}
	b := &dashEnv{env: newEnv(t, db, func(c *Config) { c.DashboardSecret = secret })}

	br := a.browser()
	first := br.login(testAdminToken, "alice")
	csrf := br.login(testAdminToken, "alice")
	if csrf == first {
		t.Error("a second sign-in in the same browser kept the session (same form token)")
	}
	u, _ := url.Parse(a.url + "/dashboard")
	var stolen *http.Cookie
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			stolen = c
		}
	}
	if stolen == nil {
		t.Fatal("no session cookie after sign-in")
	}
	replay := func(e *dashEnv, method, path string, form url.Values) int {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, e.url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.url)
		}
		req.AddCookie(&http.Cookie{Name: stolen.Name, Value: stolen.Value})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, e := range []*dashEnv{a, b} {
		if got := replay(e, "GET", "/dashboard", nil); got != http.StatusOK {
			t.Fatalf("the copied cookie before sign-out: %d, want 200", got)
		}
	}
	if resp, _ := br.do("POST", "/dashboard/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d, want 303", resp.StatusCode)
	}
	for name, e := range map[string]*dashEnv{"this replica": a, "another replica": b} {
		if got := replay(e, "GET", "/dashboard", nil); got != http.StatusSeeOther {
			t.Errorf("%s: the copied cookie after sign-out: %d, want 303 to the sign-in form", name, got)
		}
		if got := replay(e, "POST", "/dashboard/logout", url.Values{"csrf": {csrf}}); got != http.StatusForbidden {
			t.Errorf("%s: a form posted with the copied cookie after sign-out: %d, want 403", name, got)
		}
	}
}
