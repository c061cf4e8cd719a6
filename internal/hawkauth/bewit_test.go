package hawkauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// fetch GETs (or sends method to) a signed URL and returns the outcome.
func (ts *testServer) fetch(t *testing.T, method, u string) outcome {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	_ = resp.Body.Close()
	return ts.next(t)
}

func TestBewitPermanentCredentials(t *testing.T) {
	ts := newTestServer(t)
	q := tcqueue.New(&permCreds, ts.URL)
	// An artifact name with slashes is escaped in the path, as with logs.
	u, err := q.GetLatestArtifact_SignedURL("fQvzq1KmSzuuhmnVRkvTyw", "public/logs/live.log", time.Hour)
	if err != nil {
		t.Fatalf("GetLatestArtifact_SignedURL: %v", err)
	}
	id := mustAccept(t, ts.fetch(t, http.MethodGet, u.String()))
	if id.ClientID != permID || id.Issuer != "" || id.Scopes != nil {
		t.Fatalf("identity %+v, want permanent %q", *id, permID)
	}
	mustAccept(t, ts.fetch(t, http.MethodHead, u.String()))
}

func TestBewitAmongOtherQueryParameters(t *testing.T) {
	ts := newTestServer(t)
	q := tcqueue.New(&permCreds, ts.URL)
	// client-go sorts the query, so bewit comes first here...
	first, err := q.ListTaskGroup_SignedURL("tg", "token-1", "10", time.Hour)
	if err != nil {
		t.Fatalf("ListTaskGroup_SignedURL: %v", err)
	}
	if !strings.HasPrefix(first.RawQuery, "bewit=") {
		t.Fatalf("query %q does not start with bewit", first.RawQuery)
	}
	// ...and in the middle here.
	c := tcclient.Client{Credentials: &permCreds, RootURL: ts.URL, ServiceName: "queue", APIVersion: "v1"}
	middle, err := c.SignedURL("/task/x/artifacts/public%2Fa", url.Values{"a": {"1"}, "z": {"2 3"}}, time.Hour)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	if !strings.Contains(middle.RawQuery, "&bewit=") || !strings.Contains(middle.RawQuery, "&z=") {
		t.Fatalf("query %q does not put bewit in the middle", middle.RawQuery)
	}
	for _, u := range []string{first.String(), middle.String()} {
		mustAccept(t, ts.fetch(t, http.MethodGet, u))
	}

	tampered := strings.Replace(first.String(), "limit=10", "limit=11", 1)
	mustRefuse(t, ts.fetch(t, http.MethodGet, tampered), "Bad mac")
}

func TestBewitTemporaryCredentials(t *testing.T) {
	ts := newTestServer(t)
	const name = "worker/lab/mac-01"
	temp, err := permCreds.CreateNamedTemporaryCredentials(name, time.Hour, "queue:get-artifact:private/*")
	if err != nil {
		t.Fatalf("CreateNamedTemporaryCredentials: %v", err)
	}
	temp.AuthorizedScopes = []string{"queue:get-artifact:private/build.zip"}
	u, err := tcqueue.New(temp, ts.URL).GetLatestArtifact_SignedURL("fQvzq1KmSzuuhmnVRkvTyw", "private/build.zip", time.Hour)
	if err != nil {
		t.Fatalf("GetLatestArtifact_SignedURL: %v", err)
	}
	id := mustAccept(t, ts.fetch(t, http.MethodGet, u.String()))
	if id.ClientID != name || id.Issuer != permID {
		t.Fatalf("ClientID %q Issuer %q, want %q issued by %q", id.ClientID, id.Issuer, name, permID)
	}
	if !slices.Equal(id.Scopes, []string{"queue:get-artifact:private/*"}) || !slices.Equal(id.AuthorizedScopes, temp.AuthorizedScopes) {
		t.Fatalf("Scopes %q AuthorizedScopes %q", id.Scopes, id.AuthorizedScopes)
	}
}

func TestBewitRefusals(t *testing.T) {
	ts := newTestServer(t)
	now := time.Now()
	q := tcqueue.New(&permCreds, ts.URL)
	u, err := q.GetLatestArtifact_SignedURL("fQvzq1KmSzuuhmnVRkvTyw", "public/build.zip", time.Hour)
	if err != nil {
		t.Fatalf("GetLatestArtifact_SignedURL: %v", err)
	}

	t.Run("expired", func(t *testing.T) {
		ts.setServerClock(now.Add(time.Hour + time.Second))
		t.Cleanup(func() { ts.v.Now = nil })
		mustRefuse(t, ts.fetch(t, http.MethodGet, u.String()), "Access expired")
	})
	t.Run("wrong key", func(t *testing.T) {
		bad := permCreds
		bad.AccessToken = "wrong"
		u, err := tcqueue.New(&bad, ts.URL).GetLatestArtifact_SignedURL("fQvzq1KmSzuuhmnVRkvTyw", "public/build.zip", time.Hour)
		if err != nil {
			t.Fatalf("GetLatestArtifact_SignedURL: %v", err)
		}
		mustRefuse(t, ts.fetch(t, http.MethodGet, u.String()), "Bad mac")
	})
	t.Run("other path", func(t *testing.T) {
		other := strings.Replace(u.String(), "build.zip", "secret.zip", 1)
		mustRefuse(t, ts.fetch(t, http.MethodGet, other), "Bad mac")
	})
	t.Run("POST", func(t *testing.T) {
		mustRefuse(t, ts.fetch(t, http.MethodPost, u.String()), "Invalid method")
	})
	t.Run("garbage", func(t *testing.T) {
		mustRefuse(t, ts.fetch(t, http.MethodGet, ts.URL+"/x?bewit=***"), "Invalid bewit encoding")
	})
	t.Run("with Authorization too", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
		if err := permCreds.SignRequest(req); err != nil {
			t.Fatalf("SignRequest: %v", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		_ = resp.Body.Close()
		mustRefuse(t, ts.next(t), "Cannot use two authentication schemes at once")
	})
	t.Run("unknown client", func(t *testing.T) {
		stranger := permCreds
		stranger.ClientID = "stranger"
		su, err := tcqueue.New(&stranger, ts.URL).GetLatestArtifact_SignedURL("t", "public/a", time.Hour)
		if err != nil {
			t.Fatalf("GetLatestArtifact_SignedURL: %v", err)
		}
		mustRefuse(t, ts.fetch(t, http.MethodGet, su.String()), "Client with clientId 'stranger' not found")
	})
}
