package dashboard

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
)

// readOnly: a read-only sign-in sees the machines and no action form, and
// a post made with its session and form token gets 403.
func readOnly(t *testing.T, e *browsertest.Env, machine string) {
	br := e.Browser(t)
	br.Login(e.ReadOnlyToken, "", "")
	if who := br.Text(`header.top .who`); !strings.Contains(who, "read-only") {
		t.Errorf("header says %q, want read-only", who)
	}
	for _, path := range []string{"/dashboard", "/dashboard/machines/" + machine} {
		br.Navigate(path)
		if n := br.Count(`button[name=action], input[name=machine], form[action="/dashboard/actions"]`); n != 0 {
			t.Errorf("%s: a read-only sign-in sees %d action controls", path, n)
		}
	}
	br.Navigate("/dashboard")
	if n := br.Count(`tr.machine`); n != len(e.Runners) {
		t.Errorf("the read-only page shows %d machines, want %d", n, len(e.Runners))
	}
	br.Screenshot("dashboard-readonly")

	csrf := br.Value(`header.top form input[name=csrf]`)
	status, body := post(t, e.System.RootURL, br.Cookies(), url.Values{"csrf": {csrf}, "action": {"quarantine"},
		"machine": {machine}, "reason": {"not allowed"}, "duration": {"1h"}})
	if status != http.StatusForbidden || !strings.Contains(body, "actions need an admin token") {
		t.Errorf("read-only post: %d, want 403\n%s", status, body)
	}
	if quarantined(t, e, machine) {
		t.Errorf("a read-only post quarantined %s", machine)
	}
}

// post sends an action form as the browser would from the dashboard
// (same Origin), with the browser's cookies.
func post(t *testing.T, base string, cookies []*http.Cookie, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/dashboard/actions", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// forgedPosts: with the admin still signed in, a page on another origin
// (another port of the same host, so the browser sends the session
// cookie) posts a quarantine with the session's own form token, and a
// dashboard form stripped of its token is submitted: both are refused and
// the machine is untouched.
func forgedPosts(t *testing.T, e *browsertest.Env, br *browsertest.Browser, victim string) {
	br.T = t
	br.Navigate("/dashboard")
	csrf := br.Value(`#machines-form input[name=csrf]`)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><form method="post" action="%s/dashboard/actions">
<input name="csrf" value="%s"><input name="action" value="quarantine"><input name="machine" value="%s">
<input name="reason" value="forged"><input name="duration" value="1h"></form>
<script>document.forms[0].submit()</script></body></html>`, html.EscapeString(e.System.RootURL), html.EscapeString(csrf), html.EscapeString(victim))
	}))
	t.Cleanup(evil.Close)
	br.Navigate(evil.URL)
	br.Do(chromedp.WaitVisible(chromedp.CSS(`p.message`)))
	if msg := br.Text(`p.message`); !strings.Contains(msg, "form refused") || !strings.Contains(msg, "not sent from this dashboard") && !strings.Contains(msg, evil.URL) {
		t.Errorf("the cross-origin post was answered %q, want a refusal naming its origin", msg)
	}
	if h1 := br.Text(`h1`); !strings.HasPrefix(h1, "403") {
		t.Errorf("cross-origin post: %q, want 403", h1)
	}
	br.Screenshot("dashboard-refused")

	br.Navigate("/dashboard")
	browsertest.Get(br, chromedp.Evaluate[bool](`document.querySelector('#machines-form input[name=csrf]').remove(), true`))
	br.Do(chromedp.Click(chromedp.CSS(row(victim))), chromedp.SendKeys(chromedp.CSS(`#machines-form input[name=reason]`), "no token"))
	br.Submit(`#machines-form button[value=quarantine]`)
	if msg := br.Text(`p.message`); !strings.Contains(msg, "form token is missing") {
		t.Errorf("a post without the form token was answered %q", msg)
	}
	if quarantined(t, e, victim) {
		t.Errorf("a forged post quarantined %s", victim)
	}
}
