package provisioner

// Where the dashboard's browsers are, and what that makes of its cookies
// and of the same-origin check on form posts:
//
//	dashboardPublicUrl https://…  → cookies __Host-labrunner_…, Secure, Path=/; posts only from that origin
//	no setting, TLS listener      → the same cookies; posts only from https://<Host header>
//	dashboardPublicUrl http://…   → cookies labrunner_…, Path=/dashboard; posts only from that origin
//	no setting, plain HTTP        → the same plain cookies; posts from <scheme>://<Host header> (development)
//
// A TLS-terminating proxy leaves r.TLS nil, so without the setting the
// provisioner cannot tell that browsers speak https to the proxy. It does
// not guess from X-Forwarded-Proto or the Host header: a client reaching
// the provisioner around the proxy sends whatever it likes there. The
// __Host- prefix makes browsers keep such a cookie only when it was set
// Secure, from an https page, for the exact host with Path=/ and no
// Domain, so a page on a sibling host (another.lab.example.com) can
// neither overwrite nor plant it.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// hostCookiePrefix names the cookies that browsers accept only Secure,
// host-only and for the whole site.
const hostCookiePrefix = "__Host-"

// webOrigin is a browser origin: scheme, lower-case host name and port
// (the scheme's default when the URL names none).
type webOrigin struct{ scheme, host, port string }

// String is the origin as a browser writes it in an Origin header.
func (o webOrigin) String() string {
	if o.port == defaultPort(o.scheme) {
		if strings.Contains(o.host, ":") {
			return o.scheme + "://[" + o.host + "]"
		}
		return o.scheme + "://" + o.host
	}
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// originOf is the origin of an http or https URL (an Origin or Referer
// header, or the configured public URL).
func originOf(raw string) (webOrigin, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return webOrigin{}, false
	}
	o := webOrigin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.scheme != "http" && o.scheme != "https" {
		return webOrigin{}, false
	}
	if o.port == "" {
		o.port = defaultPort(o.scheme)
	}
	return o, true
}

// parseDashboardURL checks Config.DashboardPublicURL; nil when unset.
func parseDashboardURL(raw string) (*webOrigin, error) {
	if raw == "" {
		return nil, nil
	}
	const want = "give the address browsers open, scheme and host (and port), such as https://prov.lab.example.com"
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("dashboardPublicUrl %q does not parse (%v): %s", raw, err, want)
	}
	o, ok := originOf(raw)
	switch {
	case !ok:
		return nil, fmt.Errorf("dashboardPublicUrl %q is not an http or https URL with a host: %s", raw, want)
	case u.User != nil:
		return nil, fmt.Errorf("dashboardPublicUrl %q holds a user name: %s", raw, want)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("dashboardPublicUrl %q has a query or fragment: %s", raw, want)
	}
	switch strings.TrimSuffix(u.Path, "/") {
	case "", "/dashboard":
	default:
		return nil, fmt.Errorf("dashboardPublicUrl %q has the path %s: the dashboard is served at /dashboard of its host, so a proxy must not move it under a prefix; %s", raw, u.Path, want)
	}
	return &o, nil
}

// secureCookies reports whether the browser reaches the dashboard over
// https: the public URL says so, or the request came over TLS.
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || (s.dashOrigin != nil && s.dashOrigin.scheme == "https")
}

// cookieName is the name a dashboard cookie goes by for r: __Host-
// prefixed over https.
func (s *Server) cookieName(r *http.Request, name string) string {
	if s.secureCookies(r) {
		return hostCookiePrefix + name
	}
	return name
}

// cookie is a dashboard cookie: HttpOnly, SameSite=Lax (a cross-site form
// post does not carry it); over https Secure and __Host- (Path=/, no
// Domain), otherwise on /dashboard only. maxAge < 0 deletes it.
func (s *Server) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/dashboard", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if s.secureCookies(r) {
		c.Name, c.Path, c.Secure = hostCookiePrefix+name, "/", true
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// sameOrigin refuses a form post that a browser sent from another site:
// Sec-Fetch-Site when the browser sends it, then Origin, then Referer
// must name the dashboard's origin. A post with none of them is refused
// too: every browser that can show the dashboard sends Origin with a form
// post.
func (s *Server) sameOrigin(r *http.Request) *apiError {
	refuse := func(format string, args ...any) *apiError {
		return errStatus(http.StatusForbidden, "CrossOrigin", "form refused: "+format, args...)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return refuse("it was not sent from this dashboard's pages (Sec-Fetch-Site: %s)", site)
	}
	here := r.Host
	if s.dashOrigin != nil {
		here = s.dashOrigin.String()
	}
	if o := r.Header.Get("Origin"); o != "" {
		if !s.fromDashboard(o, r) {
			return refuse("it was sent from %s, not from this dashboard (%s)", o, here)
		}
		return nil
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if !s.fromDashboard(ref, r) {
			from := "an unreadable address"
			if u, err := url.Parse(ref); err == nil {
				from = u.Scheme + "://" + u.Host
			}
			return refuse("it was sent from a page of %s, not from this dashboard (%s)", from, here)
		}
		return nil
	}
	return refuse("the request says neither where it comes from (no Origin nor Referer header)")
}

// fromDashboard reports whether raw (an Origin or a Referer) is the
// dashboard's origin: the public URL's when set; otherwise r's host, over
// https behind a TLS listener.
func (s *Server) fromDashboard(raw string, r *http.Request) bool {
	o, ok := originOf(raw)
	if !ok {
		return false
	}
	if s.dashOrigin != nil {
		return o == *s.dashOrigin
	}
	if r.TLS != nil && o.scheme != "https" {
		return false
	}
	u, _ := url.Parse(raw)
	return strings.EqualFold(u.Host, r.Host)
}

// WarnInsecureDashboard logs, at start, a dashboard whose sign-ins would
// cross a network in clear: the provisioner listens on addr beyond
// loopback without TLS and dashboardPublicUrl is unset, or that URL is
// plain http for a host beyond loopback.
func (s *Server) WarnInsecureDashboard(addr net.Addr, servesTLS bool) {
	const fix = "serve TLS (tls:) or put a TLS-terminating proxy in front and set dashboardPublicUrl to its https:// address (docs/dashboard.md)"
	o := s.dashOrigin
	switch {
	case o == nil && !servesTLS && !isLoopback(addr):
		s.log.Warn("the dashboard is served over plain HTTP beyond loopback and dashboardPublicUrl is not set: sign-in cookies are not marked Secure; "+fix, "addr", addr.String())
	case o != nil && o.scheme == "http" && servesTLS:
		s.log.Warn("dashboardPublicUrl is plain http but the provisioner serves TLS: browsers post from https:// and every form would be refused; write https:// in dashboardPublicUrl", "dashboardPublicUrl", o.String())
	case o != nil && o.scheme == "http" && !loopbackHost(o.host):
		s.log.Warn("dashboardPublicUrl is plain http: sign-ins cross the network in clear; "+fix, "dashboardPublicUrl", o.String())
	}
}

// isLoopback reports whether a listener's address is on loopback only.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// loopbackHost reports whether a URL's host name is loopback.
func loopbackHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return host == "localhost"
}
