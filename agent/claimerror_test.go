package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// TestClaimErrorNamesTheRootCause: a claimWork that keeps failing until
// its poll times out says where it called and why the last try failed
// (connection refused, a 503), not only "context deadline exceeded".
func TestClaimErrorNamesTheRootCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()

	for root, want := range map[string]string{refused: "connection refused", unavailable.URL: "503 Service Unavailable"} {
		src := NewTCSource(TCSourceConfig{
			RootURL:     root,
			Credentials: tcclient.Credentials{ClientID: "c", AccessToken: "t"},
			TaskQueueID: "lab/unreachable", WorkerGroup: "lab", WorkerID: "w1",
			RetryFor: time.Minute, PollTimeout: 1500 * time.Millisecond,
		})
		_, err := src.Claim(context.Background(), 1)
		if err == nil {
			t.Fatalf("claim against %s succeeded", root)
		}
		// Windows (and Wine) capitalise the system's messages.
		for _, w := range []string{"claimWork on lab/unreachable at " + root, want} {
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
				t.Errorf("claim error %q lacks %q", err, w)
			}
		}
	}
}
