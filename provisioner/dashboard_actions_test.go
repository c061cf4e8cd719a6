package provisioner

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// browser is an HTTP client with a cookie jar that sends Origin as a
// browser does for the dashboard's forms.
type browser struct {
	e      *dashEnv
	c      *http.Client
	origin string
}

func (e *dashEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, origin: e.url, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request; form (when not nil) is posted url-encoded.
func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if b.origin != "" {
			req.Header.Set("Origin", b.origin)
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return resp, string(raw)
}

// login signs in with token and returns the machines page's form token.
func (b *browser) login(token, name string) string {
	b.e.t.Helper()
	resp, body := b.do("POST", "/dashboard/login", url.Values{"token": {token}, "name": {name}, "next": {"/dashboard/machines/lx-bb"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/machines/lx-bb" {
		b.e.t.Fatalf("sign-in: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c := resp.Cookies()
	if len(c) != 1 || c[0].Name != sessionCookie || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Path != "/dashboard" {
		b.e.t.Fatalf("session cookie %+v, want one HttpOnly SameSite=Lax cookie on /dashboard", c)
	}
	if strings.Contains(c[0].Value, token) {
		b.e.t.Fatal("the session cookie holds the token")
	}
	_, page := b.do("GET", "/dashboard", nil, nil)
	return csrfIn(page)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfIn is the form token of a page ("" when it has no form).
func csrfIn(page string) string {
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// act posts an action for machines with the given form token.
func (b *browser) act(csrf, action string, machines []string, extra url.Values, hdr map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	f := url.Values{"csrf": {csrf}, "action": {action}, "machine": machines, "return": {"/dashboard?pool=bb-linux"}}
	for k, v := range extra {
		f[k] = v
	}
	return b.do("POST", "/dashboard/actions", f, hdr)
}

// TestDashboardSignIn: the form admits admin and read-only tokens only,
// never puts the token in the cookie, sends the browser back to the page
// it asked for (on this site only), and sign-out ends the session.
func TestDashboardSignIn(t *testing.T) {
	e := newDashEnv(t)
	b := e.browser()
	resp, body := b.do("GET", "/dashboard/login?next=/dashboard/machines/lx-bb", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="next" value="/dashboard/machines/lx-bb"`) || !strings.Contains(body, `type="password"`) {
		t.Fatalf("sign-in form: %d\n%s", resp.StatusCode, body)
	}
	enroll, err := e.admin.CreateToken(e.ctx(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "nope-nope-nope-nope", enroll.Token, "lrm_lx-bb"} {
		resp, body := b.do("POST", "/dashboard/login", url.Values{"token": {tok}}, nil)
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, `role="alert"`) {
			t.Errorf("sign-in with %q: %d, cookies %v, want 401 and the form again", tok, resp.StatusCode, resp.Cookies())
		}
	}
	for next, want := range map[string]string{
		"https://evil.example/": "/dashboard", "//evil.example/dashboard": "/dashboard", "/api/v1/machines": "/dashboard",
		"/dashboard?pool=tc-win": "/dashboard?pool=tc-win", `/\evil.example`: "/dashboard",
	} {
		resp, _ := e.browser().do("POST", "/dashboard/login", url.Values{"token": {dashReadOnly}, "next": {next}}, nil)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("sign-in with next=%q: %d to %q, want 303 to %q", next, resp.StatusCode, got, want)
		}
	}
	csrf := b.login(testAdminToken, "alice")
	if csrf == "" {
		t.Fatal("an admin's page has no form token")
	}
	_, page := b.do("GET", "/dashboard", nil, nil)
	if !strings.Contains(page, "alice via config adminTokens[0] (dashboard)") || strings.Contains(page, `http-equiv="refresh"`) {
		t.Errorf("the page does not name who is signed in, or reloads itself under an admin's form:\n%s", page)
	}
	// Sign-out needs the form token too, then the session is gone.
	if resp, _ := b.do("POST", "/dashboard/logout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the form token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/dashboard/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out: %d, want 303", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/dashboard", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %d, want 303 to the sign-in form", resp.StatusCode)
	}
	// A session ends after sessionTTL.
	b2 := e.browser()
	b2.login(dashReadOnly, "")
	e.clock.Add(sessionTTL + time.Second)
	if resp, _ := b2.do("GET", "/dashboard", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a session older than %s: %d, want 303 to the sign-in form", sessionTTL, resp.StatusCode)
	}
}

// TestDashboardActionsRecordWho: an admin's buttons quarantine, release,
// drain, reboot and move machines, one or a selection; each is recorded
// with who did it, and the machine page shows the record.
func TestDashboardActionsRecordWho(t *testing.T) {
	e := newDashEnv(t)
	b := e.browser()
	csrf := b.login(testAdminToken, "alice")
	_, page := b.do("GET", "/dashboard", nil, nil)
	for _, w := range []string{`value="quarantine"`, `value="release"`, `value="drain"`, `value="reboot"`, `value="move"`,
		`<input type="checkbox" name="machine" value="lx-bb"`, `<option value="tc-win">tc-win</option>`} {
		if !strings.Contains(page, w) {
			t.Errorf("the admin's page lacks %s", w)
		}
	}
	resp, _ := b.act(csrf, "quarantine", []string{"lx-bb", "win-tc"}, url.Values{"reason": {"USB hub resets"}, "duration": {"2d"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard?pool=bb-linux" {
		t.Fatalf("quarantine: %d to %q, want 303 back to the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = b.do("GET", "/dashboard?pool=bb-linux", nil, nil)
	if !strings.Contains(page, "quarantine done for lx-bb, win-tc.") {
		t.Errorf("no outcome shown after the action:\n%s", page)
	}
	if _, again := b.do("GET", "/dashboard?pool=bb-linux", nil, nil); strings.Contains(again, "quarantine done") {
		t.Error("the outcome is shown twice")
	}
	now := e.clock.Now()
	for _, id := range []string{"lx-bb", "win-tc"} {
		m, err := e.srv.store.GetMachine(e.ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.QuarantinedUntil == nil || !m.QuarantinedUntil.Equal(now.Add(48*time.Hour)) || m.QuarantineReason != "USB hub resets" {
			t.Errorf("%s: quarantine until %v (%q), want 48 h from now for the reason given", id, m.QuarantinedUntil, m.QuarantineReason)
		}
	}
	b.act(csrf, "release", []string{"win-tc"}, url.Values{"reason": {"hub replaced"}}, nil)
	b.act(csrf, "drain", []string{"win-tc"}, nil, nil)
	b.act(csrf, "reboot", []string{"win-tc"}, url.Values{"reason": {"kernel update"}}, nil)
	b.act(csrf, "move", []string{"mac-both"}, url.Values{"pool": {"tc-win"}}, nil)
	_, page = b.do("GET", "/dashboard", nil, nil)
	if !strings.Contains(page, "move failed for mac-both: machine mac-both does not fit pool tc-win") {
		t.Errorf("an ineligible move is not reported:\n%s", page)
	}
	d, err := e.admin.GetMachine(e.ctx(), "win-tc")
	if err != nil {
		t.Fatal(err)
	}
	if d.QuarantinedUntil != nil || !d.Draining {
		t.Errorf("win-tc: quarantined until %v, draining %v; want released and draining", d.QuarantinedUntil, d.Draining)
	}
	want := []string{"reboot", "drain", "unquarantine", "quarantine"}
	if len(d.Actions) < len(want) {
		t.Fatalf("win-tc's actions: %+v", d.Actions)
	}
	for i, a := range want {
		if d.Actions[i].Action != a || d.Actions[i].Who != "alice via config adminTokens[0] (dashboard)" {
			t.Errorf("action %d = %s by %q, want %s by alice through the dashboard", i, d.Actions[i].Action, d.Actions[i].Who, a)
		}
	}
	_, page = b.do("GET", "/dashboard/machines/win-tc", nil, nil)
	for _, w := range []string{"<td>reboot</td><td>alice via config adminTokens[0] (dashboard)</td><td>kernel update", `id="machine-form"`, `name="machine" value="win-tc"`} {
		if !strings.Contains(page, w) {
			t.Errorf("the machine page lacks %s", w)
		}
	}
	// Bad fields come back as the outcome, naming the field, and change nothing.
	for _, c := range []struct {
		action string
		f      url.Values
		want   string
	}{
		{"quarantine", url.Values{"duration": {"2h"}}, "reason"},
		{"quarantine", url.Values{"reason": {"x"}, "duration": {"forever"}}, "duration"},
		{"quarantine", url.Values{"reason": {"x"}, "duration": {"400d"}}, "duration"},
		{"quarantine", url.Values{"reason": {"bad\x00byte"}, "duration": {"1h"}}, "reason"},
		{"move", nil, "pool"},
		{"explode", nil, "action"},
	} {
		b.act(csrf, c.action, []string{"lx-bb"}, c.f, nil)
		_, page := b.do("GET", "/dashboard", nil, nil)
		if !strings.Contains(page, `flash bad`) || !strings.Contains(page, "field "+c.want) && !strings.Contains(page, c.want+":") {
			t.Errorf("%s with %v: no error naming %s:\n%s", c.action, c.f, c.want, flashOf(page))
		}
	}
	b.act(csrf, "drain", nil, nil, nil)
	if _, page := b.do("GET", "/dashboard", nil, nil); !strings.Contains(flashOf(page), "no machine selected") {
		t.Errorf("an empty selection: %s", flashOf(page))
	}
}

func flashOf(page string) string {
	_, f, _ := strings.Cut(page, `<p class="flash`)
	f, _, _ = strings.Cut(f, "</p>")
	return f
}

// TestDashboardActionsRefused: read-only sign-ins see no buttons and get
// 403; posts without the session's form token, from another origin, or
// with no origin at all are refused, and nothing changes.
func TestDashboardActionsRefused(t *testing.T) {
	e := newDashEnv(t)
	ro := e.browser()
	roCSRF := ro.login(dashReadOnly, "")
	_, page := ro.do("GET", "/dashboard", nil, nil)
	_, mpage := ro.do("GET", "/dashboard/machines/lx-bb", nil, nil)
	for _, p := range []string{page, mpage} {
		if strings.Contains(p, `name="action"`) || strings.Contains(p, `type="checkbox"`) || strings.Contains(p, "/dashboard/actions") {
			t.Errorf("a read-only sign-in sees action forms:\n%s", p)
		}
	}
	if roCSRF == "" {
		t.Fatal("no sign-out form for a read-only sign-in")
	}
	admin := e.browser()
	csrf := admin.login(testAdminToken, "")
	other := e.browser()
	otherCSRF := other.login(testAdminToken, "")
	if otherCSRF == csrf {
		t.Fatal("two sessions share a form token")
	}
	quarantine := url.Values{"reason": {"r"}, "duration": {"1h"}}
	for _, c := range []struct {
		name string
		b    *browser
		csrf string
		hdr  map[string]string
		code string
	}{
		{"read-only session", ro, roCSRF, nil, "actions need an admin token"},
		{"no form token", admin, "", nil, "form token"},
		{"another session's form token", admin, otherCSRF, nil, "form token"},
		{"foreign Origin", admin, csrf, map[string]string{"Origin": "http://evil.example"}, "http://evil.example"},
		{"Origin null", admin, csrf, map[string]string{"Origin": "null"}, "null"},
		{"cross-site fetch", admin, csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"},
		{"foreign Referer, no Origin", &browser{e: e, c: admin.c}, csrf, map[string]string{"Referer": "http://evil.example/page?q=1"}, "a page of http://evil.example, not"},
		{"no Origin nor Referer", &browser{e: e, c: admin.c}, csrf, nil, "neither"},
		{"bearer admin token, no session", &browser{e: e, c: http.DefaultClient, origin: e.url}, csrf, map[string]string{"Authorization": "Bearer " + testAdminToken}, "sign in"},
	} {
		resp, body := c.b.act(c.csrf, "quarantine", []string{"lx-bb"}, quarantine, c.hdr)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, c.code) {
			t.Errorf("%s: %d, want 403 saying %q\n%s", c.name, resp.StatusCode, c.code, body)
		}
	}
	// The same-origin Referer alone is enough for a browser that sends no Origin.
	resp, _ := (&browser{e: e, c: admin.c}).act(csrf, "quarantine", []string{"win-tc"}, quarantine, map[string]string{"Referer": e.url + "/dashboard"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin Referer: %d, want 303", resp.StatusCode)
	}
	m, err := e.srv.store.GetMachine(e.ctx(), "lx-bb")
	if err != nil {
		t.Fatal(err)
	}
	acts, err := e.srv.store.Actions(e.ctx(), "lx-bb", 50)
	if err != nil {
		t.Fatal(err)
	}
	if m.QuarantinedUntil != nil || len(acts) != 1 {
		t.Errorf("refused posts changed lx-bb: quarantined until %v, %d actions (want the one recorded before)", m.QuarantinedUntil, len(acts))
	}
	// A forged sign-in from another site is refused too.
	evil := e.browser()
	evil.origin = "http://evil.example"
	if resp, _ := evil.do("POST", "/dashboard/login", url.Values{"token": {dashReadOnly}}, nil); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site sign-in: %d, want 403 and no cookie", resp.StatusCode)
	}
	// A tampered cookie is no session.
	u, _ := url.Parse(e.url + "/dashboard")
	cookies := admin.c.Jar.Cookies(u)
	forged := *cookies[0]
	forged.Value, forged.Path = strings.Replace(forged.Value, ".", "x.", 1), "/dashboard"
	admin.c.Jar.SetCookies(u, []*http.Cookie{&forged})
	if resp, _ := admin.do("GET", "/dashboard", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered session cookie: %d, want 303 to the sign-in form", resp.StatusCode)
	}
}
