package hawkauth

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestBehindReverseProxy(t *testing.T) {
	ts := newTestServer(t)
	backend, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	// NewSingleHostReverseProxy passes the client's Host header through.
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(backend))
	t.Cleanup(proxy.Close)

	q := tcqueue.New(&permCreds, proxy.URL)
	_, err = q.ClaimWork("proj/pool", &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "lab", WorkerID: "mac-01"})
	o := ts.next(t)
	if err != nil {
		t.Fatalf("ClaimWork through the proxy: %v", err)
	}
	mustAccept(t, o)
}

// TestTLSTerminatingProxyHeaders signs for https://queue.example.com (port
// 443) and delivers the request as a TLS-terminating proxy would: plain HTTP,
// Host kept, the original scheme or port in X-Forwarded-*.
func TestTLSTerminatingProxyHeaders(t *testing.T) {
	cases := []struct {
		name    string
		host    string
		headers map[string]string
		want    string // "" means accepted
	}{
		{"X-Forwarded-Proto https", "queue.example.com", map[string]string{"X-Forwarded-Proto": "https"}, ""},
		{"X-Forwarded-Port 443", "queue.example.com", map[string]string{"X-Forwarded-Port": "443"}, ""},
		{"port wins over proto", "queue.example.com", map[string]string{"X-Forwarded-Port": "443", "X-Forwarded-Proto": "http"}, ""},
		{"no forwarding headers: port 80 was not signed", "queue.example.com", nil, "Bad mac"},
		{"wrong forwarded port", "queue.example.com", map[string]string{"X-Forwarded-Port": "8443"}, "Bad mac"},
		{"Host rewritten by the proxy", "backend.internal:8080", map[string]string{"X-Forwarded-Proto": "https"}, "Bad mac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signed, err := http.NewRequest(http.MethodGet, "https://queue.example.com/api/queue/v1/claim-work/proj%2Fpool", nil)
			if err != nil {
				t.Fatalf("new request: %v", err)
			}
			if err := permCreds.SignRequest(signed); err != nil {
				t.Fatalf("SignRequest: %v", err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/queue/v1/claim-work/proj%2Fpool", nil)
			r.Host = tc.host
			r.Header.Set("Authorization", signed.Header.Get("Authorization"))
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			v := &Verifier{Clients: func(id string) (string, bool) { return permToken, id == permID }}
			id, err := v.Verify(r)
			o := outcome{id: id, err: err}
			if tc.want == "" {
				mustAccept(t, o)
				return
			}
			mustRefuse(t, o, tc.want)
		})
	}
}

func TestSignedHostPort(t *testing.T) {
	cases := []struct {
		host, proto, fport string
		tls                bool
		wantHost, wantPort string
	}{
		{"queue.example.com:8080", "", "", false, "queue.example.com", "8080"},
		{"queue.example.com", "", "", false, "queue.example.com", "80"},
		{"queue.example.com", "", "", true, "queue.example.com", "443"},
		{"queue.example.com", "http", "", false, "queue.example.com", "80"},
		{"queue.example.com:8080", "https", "", false, "queue.example.com", "443"},
		{"queue.example.com", "https", "8443", false, "queue.example.com", "8443"},
		{"[::1]:8080", "", "", false, "::1", "8080"},
		{"[::1]", "", "", false, "::1", "80"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = tc.host
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if tc.fport != "" {
			r.Header.Set("X-Forwarded-Port", tc.fport)
		}
		if !tc.tls {
			r.TLS = nil
		}
		if tc.tls && r.TLS == nil {
			r = httptest.NewRequest(http.MethodGet, "https://"+tc.host+"/", nil)
		}
		h, p := signedHostPort(r)
		if h != tc.wantHost || p != tc.wantPort {
			t.Errorf("Host %q proto %q port %q tls %v: got %s %s, want %s %s", tc.host, tc.proto, tc.fport, tc.tls, h, p, tc.wantHost, tc.wantPort)
		}
	}
}
