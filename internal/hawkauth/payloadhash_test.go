package hawkauth

import (
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"

	hawk "github.com/tent/hawk-go"
)

// postWithHash signs a POST whose Hawk header carries the payload hash of
// signedBody, then sends sentBody. client-go never sends a hash, so hawk-go
// signs these directly.
func (ts *testServer) postWithHash(t *testing.T, signedBody, sentBody string) outcome {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/queue/v1/task/x/runs/0/completed", strings.NewReader(sentBody))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	auth := hawk.NewRequestAuth(req, &hawk.Credentials{ID: permID, Key: permToken, Hash: sha256.New}, 0)
	h := auth.PayloadHash("application/json")
	_, _ = io.WriteString(h, signedBody)
	auth.SetHash(h)
	req.Header.Set("Authorization", auth.RequestHeader())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	_ = resp.Body.Close()
	return ts.next(t)
}

func TestPayloadHashMatches(t *testing.T) {
	ts := newTestServer(t)
	const body = `{"reason":"worker-shutdown"}`
	o := ts.postWithHash(t, body, body)
	mustAccept(t, o)
	if o.body != body {
		t.Fatalf("handler read %q after Verify, want the body %q", o.body, body)
	}
}

func TestPayloadHashMismatchRefused(t *testing.T) {
	ts := newTestServer(t)
	mustRefuse(t, ts.postWithHash(t, `{"reason":"worker-shutdown"}`, `{"reason":"malformed-payload"}`), "Invalid payload hash")
}
