package hawkauth

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

func TestTemporaryCredentialsAccepted(t *testing.T) {
	ts := newTestServer(t)
	scopes := []string{"queue:claim-work:proj/pool", "queue:worker-id:lab/mac-01"}
	temp, err := permCreds.CreateTemporaryCredentials(2*time.Hour, scopes...)
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}
	cert, err := temp.Cert()
	if err != nil {
		t.Fatalf("Cert: %v", err)
	}
	id := mustAccept(t, ts.call(t, temp))
	if id.ClientID != permID || id.Issuer != permID {
		t.Fatalf("ClientID %q Issuer %q, want both %q", id.ClientID, id.Issuer, permID)
	}
	if !slices.Equal(id.Scopes, scopes) {
		t.Fatalf("Scopes %q, want %q", id.Scopes, scopes)
	}
	if id.AuthorizedScopes != nil {
		t.Fatalf("AuthorizedScopes %q, want nil", id.AuthorizedScopes)
	}
	if !id.Expires.Equal(time.UnixMilli(cert.Expiry)) {
		t.Fatalf("Expires %v, want the certificate's %v", id.Expires, time.UnixMilli(cert.Expiry))
	}
}

func TestNamedTemporaryCredentialsAccepted(t *testing.T) {
	ts := newTestServer(t)
	const name = "worker/lab/proj/pool/lab/mac-01"
	temp, err := permCreds.CreateNamedTemporaryCredentials(name, time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateNamedTemporaryCredentials: %v", err)
	}
	id := mustAccept(t, ts.call(t, temp))
	if id.ClientID != name || id.Issuer != permID {
		t.Fatalf("ClientID %q Issuer %q, want %q issued by %q", id.ClientID, id.Issuer, name, permID)
	}
	if !slices.Equal(id.Scopes, []string{"queue:claim-work:proj/pool"}) {
		t.Fatalf("Scopes %q", id.Scopes)
	}
}

func TestNamedTemporaryCredentialsUnderAnotherName(t *testing.T) {
	ts := newTestServer(t)
	temp, err := permCreds.CreateNamedTemporaryCredentials("worker/a", time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateNamedTemporaryCredentials: %v", err)
	}
	renamed := *temp
	renamed.ClientID = "worker/b"
	mustRefuse(t, ts.call(t, &renamed), "ext.certificate.signature is not valid, or wrong clientId provided")
}

func TestNamedTemporaryCredentialsNamedAsIssuer(t *testing.T) {
	ts := newTestServer(t)
	temp, err := permCreds.CreateNamedTemporaryCredentials(permID, time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateNamedTemporaryCredentials: %v", err)
	}
	mustRefuse(t, ts.call(t, temp), "ext.certificate.issuer must differ from the supplied clientId")
}

func TestTemporaryCredentialsFromUnknownIssuer(t *testing.T) {
	ts := newTestServer(t)
	stranger := tcclient.Credentials{ClientID: "stranger", AccessToken: permToken}
	temp, err := stranger.CreateNamedTemporaryCredentials("worker/x", time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateNamedTemporaryCredentials: %v", err)
	}
	// The issuer, not the name, is looked up.
	mustRefuse(t, ts.call(t, temp), "Client with clientId 'stranger' not found")
}

func TestCertificateValidityWindow(t *testing.T) {
	temp, err := permCreds.CreateTemporaryCredentials(time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}
	cert, err := temp.Cert()
	if err != nil {
		t.Fatalf("Cert: %v", err)
	}
	start, expiry := time.UnixMilli(cert.Start), time.UnixMilli(cert.Expiry)
	cases := []struct {
		name string
		now  time.Time
		want string // "" means accepted
	}{
		{"just after expiry, within 5m grace", expiry.Add(5*time.Minute - time.Second), ""},
		{"expired beyond 5m grace", expiry.Add(5*time.Minute + time.Second), "ext.certificate.expiry < now"},
		{"a day after expiry", expiry.Add(24 * time.Hour), "ext.certificate.expiry < now"},
		{"before start, within 5m grace", start.Add(-5*time.Minute + time.Second), ""},
		{"before start beyond 5m grace", start.Add(-5*time.Minute - time.Second), "ext.certificate.start > now"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			// Both clocks agree, so only the certificate's window is at stake.
			setClientClock(t, tc.now)
			ts.setServerClock(tc.now)
			o := ts.call(t, temp)
			if tc.want == "" {
				id := mustAccept(t, o)
				if !id.Expires.Equal(expiry) {
					t.Fatalf("Expires %v, want %v", id.Expires, expiry)
				}
				return
			}
			mustRefuse(t, o, tc.want)
		})
	}
}

func TestTamperedCertificateRefused(t *testing.T) {
	temp, err := permCreds.CreateTemporaryCredentials(time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"scope widened", func(c map[string]any) { c["scopes"] = []string{"queue:claim-work:*"} }, "ext.certificate.signature is not valid"},
		{"scope added", func(c map[string]any) { c["scopes"] = []string{"queue:claim-work:proj/pool", "secrets:get:*"} }, "ext.certificate.signature is not valid"},
		{"expiry extended", func(c map[string]any) { c["expiry"] = c["expiry"].(float64) + 3600e3 }, "ext.certificate.signature is not valid"},
		{"version 2", func(c map[string]any) { c["version"] = 2 }, "ext.certificate.version must be 1"},
		{"short seed", func(c map[string]any) { c["seed"] = "abc" }, "ext.certificate.seed must be 44 characters"},
		{"unprintable scope", func(c map[string]any) { c["scopes"] = []string{"queue:\x01"} }, "ext.certificate.scopes must be an array of valid scopes"},
		{"lasts 32 days", func(c map[string]any) { c["expiry"] = c["start"].(float64) + 32*24*3600e3 }, "ext.certificate cannot last longer than 31 days!"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			mustRefuse(t, ts.call(t, editCertificate(t, temp, tc.edit)), tc.want)
		})
	}
}

func TestTemporaryCredentialsWithoutScopes(t *testing.T) {
	// client-go writes "scopes": null when given no scopes, and Taskcluster
	// refuses that; devqueue must refuse it too rather than accept what the
	// real service would not.
	ts := newTestServer(t)
	temp, err := permCreds.CreateTemporaryCredentials(time.Hour)
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}
	mustRefuse(t, ts.call(t, temp), "ext.certificate.scopes must be an array")
}

func TestMalformedExtRefused(t *testing.T) {
	temp, err := permCreds.CreateTemporaryCredentials(time.Hour, "queue:claim-work:proj/pool")
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}
	cert := func(edit func(map[string]any)) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(temp.Certificate), &m); err != nil {
			t.Fatalf("parse certificate: %v", err)
		}
		edit(m)
		return m
	}
	cases := []struct {
		name string
		ext  any
		want string
	}{
		{"not base64", "%%%", "Failed to parse ext"},
		{"not JSON", "bm90IGpzb24=", "Failed to parse ext"},
		{"certificate not an object", map[string]any{"certificate": "x"}, "ext.certificate must be a JSON object"},
		{"start a string", map[string]any{"certificate": cert(func(c map[string]any) { c["start"] = "0" })}, "ext.certificate.start must be a number"},
		{"expiry missing", map[string]any{"certificate": cert(func(c map[string]any) { delete(c, "expiry") })}, "ext.certificate.expiry must be a number"},
		{"seed a number", map[string]any{"certificate": cert(func(c map[string]any) { c["seed"] = 7 })}, "ext.certificate.seed must be a string"},
		{"clientId without issuer", map[string]any{"certificate": cert(func(c map[string]any) { c["clientId"] = "worker/x" })}, "ext.certificate.clientId must only be used with ext.certificate.issuer"},
		{"issuer not a string", map[string]any{"certificate": cert(func(c map[string]any) { c["issuer"] = 5 })}, "ext.certificate.issuer must be a string"},
		{"authorizedScopes not an array", map[string]any{"authorizedScopes": "queue:*"}, "ext.authorizedScopes must be an array"},
		{"authorizedScopes unprintable", map[string]any{"authorizedScopes": []string{"a\x7f"}}, "ext.authorizedScopes must be an array of valid scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			mustRefuse(t, ts.callWithExt(t, permID, temp.AccessToken, tc.ext), tc.want)
		})
	}
}
