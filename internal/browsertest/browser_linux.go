package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with a fresh profile, pointed at an
// Env's dashboard.
type Browser struct {
	T *testing.T
	// BaseURL is the dashboard's origin (the devstack's root URL).
	BaseURL string
	ctx     context.Context
}

// Browser opens a fresh Chromium for t (skipped when Chromium can be
// neither found nor installed); it closes when t ends.
func (e *Env) Browser(t *testing.T) *Browser {
	return NewBrowser(t, e.System.RootURL)
}

// NewBrowser opens a fresh Chromium for t on the site at baseURL; extra
// options (TrustCertificate) add to the flags it always has.
func NewBrowser(t *testing.T, baseURL string, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	exe := Chromium(t)
	// The flags Chromium needs as root in a container, and none of its
	// own traffic (updates, sync, safe browsing) during a test.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &Browser{T: t, BaseURL: baseURL, ctx: ctx}
	// The first action starts the browser and ties it to the context it
	// runs on: b.ctx itself, not one of Do's timeouts, which would close
	// the browser with the first action.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	return b
}

// TrustCertificate makes Chromium accept cert (a test server's
// self-signed one) as valid for https, with no certificate error: pages
// are then a secure context and keep Secure cookies as on a real site.
// Chromium honours the flag because NewBrowser gives it its own profile.
func TrustCertificate(cert *x509.Certificate) chromedp.ExecAllocatorOption {
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:]))
}

// Do runs actions in the browser, failing the test on an error or after
// WaitLimit.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	if err := b.Try(actions...); err != nil {
		b.T.Fatalf("browser: %v", err)
	}
}

// Try runs actions and returns their error (WaitLimit bounds them).
func (b *Browser) Try(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, WaitLimit)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Get runs one action that returns a value, failing the test on an error
// or after WaitLimit.
func Get[T any](b *Browser, a chromedp.Action[T]) T {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, WaitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.T.Fatalf("browser: %v", err)
	}
	return v
}

// Navigate opens path (on BaseURL unless it is a full URL) and waits for
// its body.
func (b *Browser) Navigate(path string) {
	b.T.Helper()
	u := path
	if len(path) > 0 && path[0] == '/' {
		u = b.BaseURL + path
	}
	b.Do(chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("body")))
}

// Login signs in through the dashboard's form with token and, when not
// empty, an operator name; it waits for the dashboard's header. A
// screenshot of the filled form is taken when shot is not empty.
func (b *Browser) Login(token, name, shot string) {
	b.T.Helper()
	b.Navigate("/dashboard/login")
	b.Do(chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), token))
	if name != "" {
		b.Do(chromedp.SendKeys(chromedp.CSS("#name"), name))
	}
	if shot != "" {
		b.Screenshot(shot)
	}
	b.Do(chromedp.Click(chromedp.CSS("form.login button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("header.top .who")))
}

// Submit clicks the submit button matched by the CSS selector sel and
// waits for the page the form leads to (not the page it was on, which is
// marked first).
func (b *Browser) Submit(sel string) {
	b.T.Helper()
	Get(b, chromedp.Evaluate[bool](`document.body.dataset.left = "1", true`))
	b.Do(chromedp.Click(chromedp.CSS(sel)), chromedp.WaitReady(chromedp.CSS("body:not([data-left])")))
}

// Text is the text of the first element matching the CSS selector sel.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	return Get(b, chromedp.Text(chromedp.CSS(sel)))
}

// Value is the value of the first input matching the CSS selector sel.
func (b *Browser) Value(sel string) string {
	b.T.Helper()
	return Get(b, chromedp.Value(chromedp.CSS(sel)))
}

// Count is how many elements match the CSS selector sel.
func (b *Browser) Count(sel string) int {
	b.T.Helper()
	return Get(b, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// Cookies are the browser's cookies for the dashboard, for requests made
// beside the browser (as the same signed-in user).
func (b *Browser) Cookies() []*http.Cookie {
	b.T.Helper()
	var out []*http.Cookie
	b.Do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.BaseURL + "/dashboard"}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
		}
		return nil
	}))
	return out
}

// Screenshot saves the whole page as name.png in the test's artifact
// directory and, when LABRUNNER_DASHBOARD_SHOTS names a directory
// (relative to the repository's top), there too: the pictures of the
// docs. It returns the artifact's path.
func (b *Browser) Screenshot(name string) string {
	b.T.Helper()
	return b.shot(name, true)
}

// ArtifactShot saves the whole page as name.png in the test's artifact
// directory only (a page the docs do not show).
func (b *Browser) ArtifactShot(name string) string {
	b.T.Helper()
	return b.shot(name, false)
}

func (b *Browser) shot(name string, docs bool) string {
	b.T.Helper()
	// Let the page settle (fonts, layout) before the shot.
	b.Do(chromedp.Sleep(100 * time.Millisecond))
	png := Get(b, chromedp.FullScreenshot(100))
	path := filepath.Join(b.T.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.T.Fatal(err)
	}
	if dir := os.Getenv("LABRUNNER_DASHBOARD_SHOTS"); dir != "" && docs {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(RepoRoot(), dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.T.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.T.Fatal(err)
		}
	}
	b.T.Logf("screenshot %s: %s", name, path)
	return path
}
