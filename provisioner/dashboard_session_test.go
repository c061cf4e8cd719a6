package provisioner

import (
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
