package dashboard

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
	"github.com/labrunner/labrunner/provisioner"
)

// TestDashboardBehindTLSProxy: in headless Chromium, through a
// TLS-terminating reverse proxy (the provisioner behind it sees plain
// HTTP) with dashboardPublicUrl set to the proxy's https address, an
// admin signs in and the browser keeps the __Host- prefixed session
// cookie; a form posted to the dashboard from a plain-HTTP page is
// refused; signing out ends the session.
func TestDashboardBehindTLSProxy(t *testing.T) {
	const token = "proxy-test-admin-token-0123456789"
	var proxy atomic.Pointer[httputil.ReverseProxy]
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxy.Load().ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	srv, err := provisioner.New(provisioner.Config{DB: filepath.Join(t.TempDir(), "prov.db"), AdminTokens: []string{token},
		DashboardPublicURL: front.URL, CancelPollInterval: -1, Logger: browsertest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	back := httptest.NewServer(srv.Handler())
	t.Cleanup(back.Close)
	backURL, err := url.Parse(back.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Store(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(backURL) }})

	br := browsertest.NewBrowser(t, front.URL, browsertest.TrustCertificate(front.Certificate()))
	br.Login(token, admin, "")
	if who := br.Text(`header.top .who`); !strings.Contains(who, admin+" via config adminTokens[0] (dashboard) · admin") {
		t.Errorf("header says %q, want alice signed in as admin", who)
	}
	var names []string
	for _, c := range br.Cookies() {
		names = append(names, c.Name)
	}
	// Chromium keeps a __Host- cookie only when it came Secure, from an
	// https page, on Path=/ and without Domain.
	if len(names) != 1 || names[0] != "__Host-labrunner_dashboard" {
		t.Errorf("the browser keeps the cookies %v, want __Host-labrunner_dashboard", names)
	}
	br.ArtifactShot("proxy-signed-in")

	// A page served over plain HTTP posts to the dashboard.
	csrf := br.Value(`header.top form input[name=csrf]`)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><form method="post" action="%s/dashboard/logout">
<input name="csrf" value="%s"></form><script>document.forms[0].submit()</script></body></html>`,
			html.EscapeString(front.URL), html.EscapeString(csrf))
	}))
	t.Cleanup(evil.Close)
	br.Navigate(evil.URL)
	br.Do(chromedp.WaitVisible(chromedp.CSS(`p.message`)))
	// Chromium marks it cross-site (http and https are different sites to
	// it); a browser that does not would be refused by its Origin.
	if msg := br.Text(`p.message`); !strings.Contains(msg, "form refused") || !strings.Contains(msg, "Sec-Fetch-Site: cross-site") && !strings.Contains(msg, evil.URL) {
		t.Errorf("a post from %s was answered %q, want a refusal", evil.URL, msg)
	}
	br.Navigate("/dashboard")
	if n := br.Count(`header.top .who`); n != 1 {
		t.Fatal("the refused post ended the session")
	}

	br.Submit(`header.top form button`)
	br.Navigate("/dashboard")
	if n := br.Count(`form.login`); n != 1 {
		t.Errorf("after signing out, /dashboard shows no sign-in form")
	}
}
