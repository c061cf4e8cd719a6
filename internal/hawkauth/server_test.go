package hawkauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	hawk "github.com/tent/hawk-go"
)

// The one permanent client the test Verifier knows.
const (
	permID    = "project/labrunner/tester"
	permToken = "perm-token-4n5Vt1pQsR2uWxYz0aBcDeFgHiJkLmNoP"
)

var permCreds = tcclient.Credentials{ClientID: permID, AccessToken: permToken}

// outcome is what Verify returned for one request the test server received.
type outcome struct {
	id   *Identity
	err  error
	body string // the body the handler could still read after Verify
}

// testServer answers every request by calling Verify, the way devqueue will.
type testServer struct {
	*httptest.Server
	v   *Verifier
	got chan outcome
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{
		v: &Verifier{Clients: func(clientID string) (string, bool) {
			if clientID == permID {
				return permToken, true
			}
			return "", false
		}},
		got: make(chan outcome, 16),
	}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ts.v.Verify(r)
		body, _ := io.ReadAll(r.Body)
		ts.got <- outcome{id: id, err: err, body: string(body)}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "AuthenticationFailed", "message": err.Error()})
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(ts.Close)
	return ts
}

// next waits for the outcome of the request just made.
func (ts *testServer) next(t *testing.T) outcome {
	t.Helper()
	select {
	case o := <-ts.got:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the server never received the request")
		return outcome{}
	}
}

// call makes one signed GET with client-go, as a queue client would.
func (ts *testServer) call(t *testing.T, creds *tcclient.Credentials) outcome {
	t.Helper()
	c := tcclient.Client{Credentials: creds, RootURL: ts.URL, ServiceName: "queue", APIVersion: "v1", Authenticate: creds != nil}
	cs, err := c.Request(nil, http.MethodGet, "/task/fQvzq1KmSzuuhmnVRkvTyw", nil)
	o := ts.next(t)
	// The client must see what the server decided.
	if (err != nil) != (o.err != nil) {
		t.Fatalf("client error %v, but server verify error %v", err, o.err)
	}
	if o.err != nil && !strings.Contains(cs.HTTPResponseBody, "AuthenticationFailed") {
		t.Fatalf("client got %q, want the 401 body", cs.HTTPResponseBody)
	}
	return o
}

// setClientClock makes hawk-go (and so client-go) sign with timestamp at.
func setClientClock(t *testing.T, at time.Time) {
	t.Helper()
	saved := hawk.Now
	hawk.Now = func() time.Time { return at }
	t.Cleanup(func() { hawk.Now = saved })
}

// setServerClock fixes the Verifier's clock.
func (ts *testServer) setServerClock(at time.Time) {
	ts.v.Now = func() time.Time { return at }
}

// mustAccept fails unless o is a successful authentication.
func mustAccept(t *testing.T, o outcome) *Identity {
	t.Helper()
	if o.err != nil {
		t.Fatalf("Verify refused a valid request: %v", o.err)
	}
	if o.id == nil {
		t.Fatal("Verify returned no identity for a signed request")
	}
	return o.id
}

// mustRefuse fails unless o is an *Error whose message contains want.
func mustRefuse(t *testing.T, o outcome, want string) {
	t.Helper()
	if o.err == nil {
		t.Fatalf("Verify accepted the request as %+v; want error containing %q", o.id, want)
	}
	var ae *Error
	if !errors.As(o.err, &ae) {
		t.Fatalf("error %v is %T, want *hawkauth.Error", o.err, o.err)
	}
	if o.id != nil {
		t.Fatalf("Verify returned identity %+v together with error %v", o.id, o.err)
	}
	if !strings.Contains(ae.Message, want) {
		t.Fatalf("error message %q does not say %q", ae.Message, want)
	}
	if strings.Contains(ae.Message, permToken) {
		t.Fatalf("error message %q leaks the access token", ae.Message)
	}
}

// editCertificate rewrites the certificate of creds through a JSON map, the
// way someone tampering with it would.
func editCertificate(t *testing.T, creds *tcclient.Credentials, edit func(map[string]any)) *tcclient.Credentials {
	t.Helper()
	var cert map[string]any
	if err := json.Unmarshal([]byte(creds.Certificate), &cert); err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	edit(cert)
	b, err := json.Marshal(cert)
	if err != nil {
		t.Fatalf("marshal certificate: %v", err)
	}
	out := *creds
	out.Certificate = string(b)
	return &out
}

// callWithExt signs a GET with hawk-go directly, carrying an ext that
// client-go could not produce (it re-encodes certificates through a struct).
// Only refusals are tested this way.
func (ts *testServer) callWithExt(t *testing.T, clientID, key string, ext any) outcome {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/api/queue/v1/task/fQvzq1KmSzuuhmnVRkvTyw", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	auth := hawk.NewRequestAuth(req, &hawk.Credentials{ID: clientID, Key: key, Hash: sha256.New}, 0)
	switch e := ext.(type) {
	case string:
		auth.Ext = e
	default:
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal ext: %v", err)
		}
		auth.Ext = base64.StdEncoding.EncodeToString(b)
	}
	req.Header.Set("Authorization", auth.RequestHeader())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	_ = resp.Body.Close()
	return ts.next(t)
}
