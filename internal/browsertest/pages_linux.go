package browsertest

import (
	"context"
	"net/url"
	"strings"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// cspWatch records every Content-Security-Policy violation of a page in
// window.__cspViolations. Chromium runs a script added over the DevTools
// protocol whatever the page's policy, so the watch itself breaks none.
const cspWatch = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e =>
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`

// WatchCSP makes every page loaded from now on record the
// Content-Security-Policy violations CSPViolations returns.
func (b *Browser) WatchCSP() {
	b.T.Helper()
	b.Do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch})
		return err
	}))
}

// CSPViolations are the current page's violations since it loaded (nil
// without WatchCSP).
func (b *Browser) CSPViolations() []string {
	b.T.Helper()
	return Get(b, chromedp.Evaluate[[]string](`window.__cspViolations || []`))
}

// Open loads path (on BaseURL unless it is a full URL) and returns the
// HTTP status of its document.
func (b *Browser) Open(path string) int {
	b.T.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.BaseURL + path
	}
	resp := Get(b, chromedp.NavigateResponse(u))
	return int(resp.Status)
}

// DashboardLinks are the distinct dashboard pages the current page links
// to (path and query, no fragment), in page order; the sign-in form and
// links off the dashboard are left out.
func (b *Browser) DashboardLinks() []string {
	b.T.Helper()
	hrefs := Get(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("a[href]"), a => a.href)`))
	base, err := url.Parse(b.BaseURL)
	if err != nil {
		b.T.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range hrefs {
		u, err := url.Parse(h)
		if err != nil || u.Host != base.Host || !strings.HasPrefix(u.Path, "/dashboard") || u.Path == "/dashboard/login" {
			continue
		}
		u.Fragment = ""
		p := u.RequestURI()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
