package hawkauth

import (
	"net/http"
	"slices"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

func TestPermanentCredentialsAccepted(t *testing.T) {
	ts := newTestServer(t)
	// claimWork escapes the '/' in the queue id, so this also proves the
	// signed path is the raw one.
	q := tcqueue.New(&permCreds, ts.URL)
	_, err := q.ClaimWork("proj/pool", &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "lab", WorkerID: "mac-01"})
	o := ts.next(t)
	if err != nil {
		t.Fatalf("ClaimWork: %v", err)
	}
	id := mustAccept(t, o)
	want := Identity{ClientID: permID}
	if id.ClientID != want.ClientID || id.Issuer != "" || id.Scopes != nil || id.AuthorizedScopes != nil || !id.Expires.IsZero() {
		t.Fatalf("identity %+v, want %+v", *id, want)
	}
	if o.body == "" {
		t.Fatal("handler could not read the request body after Verify")
	}
}

func TestWrongAccessTokenRefused(t *testing.T) {
	ts := newTestServer(t)
	mustRefuse(t, ts.call(t, &tcclient.Credentials{ClientID: permID, AccessToken: "not-the-token"}), "Bad mac")
}

func TestUnknownClientRefused(t *testing.T) {
	ts := newTestServer(t)
	mustRefuse(t, ts.call(t, &tcclient.Credentials{ClientID: "nobody", AccessToken: permToken}), "Client with clientId 'nobody' not found")
}

func TestNilClientsRefusesEveryone(t *testing.T) {
	ts := newTestServer(t)
	ts.v.Clients = nil
	mustRefuse(t, ts.call(t, &permCreds), "not found")
}

func TestAnonymousRequest(t *testing.T) {
	ts := newTestServer(t)
	o := ts.call(t, nil)
	if o.id != nil || o.err != nil {
		t.Fatalf("anonymous request: got (%+v, %v), want (nil, nil)", o.id, o.err)
	}
	resp, err := http.Get(ts.URL + "/api/queue/v1/task/x?limit=3")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	_ = resp.Body.Close()
	if o := ts.next(t); o.id != nil || o.err != nil {
		t.Fatalf("anonymous request with a query: got (%+v, %v), want (nil, nil)", o.id, o.err)
	}
}

func TestNonHawkAuthorizationRefused(t *testing.T) {
	ts := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/queue/v1/task/x", nil)
	req.Header.Set("Authorization", "Bearer abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	_ = resp.Body.Close()
	mustRefuse(t, ts.next(t), "must be Hawk")
}

func TestClockSkew(t *testing.T) {
	// Whole seconds, because the Hawk timestamp is in seconds.
	signedAt := time.Unix(time.Now().Unix(), 0)
	cases := []struct {
		name   string
		offset time.Duration // server clock minus client clock
		ok     bool
	}{
		{"same clock", 0, true},
		{"server 15m ahead", 15 * time.Minute, true},
		{"server 15m behind", -15 * time.Minute, true},
		{"server 15m+1ms ahead", 15*time.Minute + time.Millisecond, false},
		{"server 15m+1ms behind", -15*time.Minute - time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			setClientClock(t, signedAt)
			ts.setServerClock(signedAt.Add(tc.offset))
			o := ts.call(t, &permCreds)
			if tc.ok {
				mustAccept(t, o)
			} else {
				mustRefuse(t, o, "Stale timestamp")
			}
		})
	}
}

func TestAuthorizedScopesPassedThrough(t *testing.T) {
	ts := newTestServer(t)
	creds := permCreds
	creds.AuthorizedScopes = []string{"queue:claim-work:proj/pool", "queue:worker-id:lab/mac-01"}
	id := mustAccept(t, ts.call(t, &creds))
	if !slices.Equal(id.AuthorizedScopes, creds.AuthorizedScopes) {
		t.Fatalf("AuthorizedScopes %q, want %q", id.AuthorizedScopes, creds.AuthorizedScopes)
	}
	if id.Scopes != nil {
		t.Fatalf("Scopes %q for permanent credentials, want nil", id.Scopes)
	}

	// An empty list means "no scopes", which is not the same as "not given".
	creds.AuthorizedScopes = []string{}
	id = mustAccept(t, ts.call(t, &creds))
	if id.AuthorizedScopes == nil || len(id.AuthorizedScopes) != 0 {
		t.Fatalf("AuthorizedScopes %#v, want empty non-nil", id.AuthorizedScopes)
	}
}

func TestAuthorizedScopesWithTemporaryCredentials(t *testing.T) {
	ts := newTestServer(t)
	temp, err := permCreds.CreateTemporaryCredentials(time.Hour, "queue:claim-work:proj/*")
	if err != nil {
		t.Fatalf("CreateTemporaryCredentials: %v", err)
	}

	within := *temp
	within.AuthorizedScopes = []string{"queue:claim-work:proj/pool", "assume:anonymous"}
	id := mustAccept(t, ts.call(t, &within))
	if !slices.Equal(id.AuthorizedScopes, within.AuthorizedScopes) {
		t.Fatalf("AuthorizedScopes %q, want %q", id.AuthorizedScopes, within.AuthorizedScopes)
	}
	if !slices.Equal(id.Scopes, []string{"queue:claim-work:proj/*"}) {
		t.Fatalf("Scopes %q, want the certificate's", id.Scopes)
	}

	beyond := *temp
	beyond.AuthorizedScopes = []string{"queue:claim-work:other/pool"}
	mustRefuse(t, ts.call(t, &beyond), "Supplied credentials do not satisfy authorizedScopes")
}
