package hawkauth

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// requestResource is the request-target exactly as the client sent it, like
// Express's req.originalUrl. r.URL.Path would not do: it is unescaped, and
// client-go signs escaped paths such as /claim-work/proj%2Fpool.
func requestResource(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	// Absolute-form targets and requests built in process (no RequestURI).
	return r.URL.RequestURI()
}

// bewitPattern is hawk's own: the last bewit parameter, and what surrounds it.
var bewitPattern = regexp.MustCompile(`^(/.*)([?&])bewit=([^&$]*)(?:&(.+))?$`)

// hasBewit is Taskcluster's test for bewit authentication, made on the raw
// resource because it does not parse the query first.
func hasBewit(resource string) bool {
	return bewitPattern.MatchString(resource)
}

// splitBewit returns the bewit and the resource without it, which is what the
// client signed.
func splitBewit(resource string) (bewit, signed string) {
	m := bewitPattern.FindStringSubmatch(resource)
	if m == nil {
		return "", resource
	}
	signed = m[1]
	if m[4] != "" {
		signed += m[2] + m[4]
	}
	return m[3], signed
}

// signedHostPort is the host and port the client put in its MAC. The host is
// r.Host (a proxy must keep the client's Host header). The port is the one in
// r.Host, unless a proxy says otherwise with X-Forwarded-Port or, as
// Taskcluster also honours, X-Forwarded-Proto: https. Without either, the
// default is that of the scheme the request arrived on, which is what
// hawk-go's client assumes for a URL without a port. IPv6 literals lose their
// brackets, as hawk-go's client writes them.
func signedHostPort(r *http.Request) (host, port string) {
	host = r.Host
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if fp := r.Header.Get("X-Forwarded-Port"); fp != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(fp)); err == nil {
			return host, strconv.Itoa(n)
		}
	} else if proto := r.Header.Get("X-Forwarded-Proto"); proto == "https" {
		return host, "443"
	} else if port == "" && proto == "http" {
		return host, "80"
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	return host, port
}
