package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	bbclient "github.com/labrunner/labrunner/bridge/client"
)

// claimTestDeadline bounds waits in these tests, which also run on
// Windows (helpers_test.go is unix-only).
const claimTestDeadline = 60 * time.Second

// claimTestLogger keeps info logs out of test output.
func claimTestLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// stopBound is how soon an abandoned claim must let its caller go: well
// under the 20 s long polls, generous for a loaded machine under -race.
const stopBound = 5 * time.Second

// longPollBridge is the bridge's master API as the agent sees it: a claim
// waits up to its wait (or until the agent hangs up) for work that never
// comes. With claimsAtOnce, the first claim is taken by the bridge at once
// but its answer never sent (as when the agent abandons the call while
// the bridge is still starting the build): the build is held by the
// claimer's incarnation, and a later claim of that incarnation returns it,
// as the real master API does.
type longPollBridge struct {
	srv          *httptest.Server
	claimsAtOnce bool
	inFlight     chan struct{} // receives once per claim call that began waiting

	mu       sync.Mutex
	claims   []bbclient.ClaimRequest
	held     *bbclient.Build
	finishes []bbclient.FinishRequest
}

func newLongPollBridge(t *testing.T, claimsAtOnce bool) *longPollBridge {
	b := &longPollBridge{claimsAtOnce: claimsAtOnce, inFlight: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/master/claim", func(w http.ResponseWriter, r *http.Request) {
		var req bbclient.ClaimRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.claims = append(b.claims, req)
		first := len(b.claims) == 1
		if held := b.held; held != nil && held.Incarnation == req.Incarnation {
			b.mu.Unlock()
			_ = json.NewEncoder(w).Encode(bbclient.ClaimResponse{Build: held})
			return
		}
		if first && b.claimsAtOnce {
			b.held = &bbclient.Build{BuildID: 41, BuildNumber: 5, BuildRequestID: 9, BuilderName: "b", Incarnation: req.Incarnation,
				Steps: []bbclient.Step{{Command: []string{"true"}}}, MaxRunTime: 60}
		}
		b.mu.Unlock()
		b.inFlight <- struct{}{}
		select {
		case <-r.Context().Done():
			return // the agent hung up: no answer
		case <-time.After(time.Duration(req.Wait) * time.Second):
		}
		if first && b.claimsAtOnce {
			return // the answer is never sent
		}
		_ = json.NewEncoder(w).Encode(bbclient.ClaimResponse{})
	})
	mux.HandleFunc("POST /api/v1/master/finish", func(w http.ResponseWriter, r *http.Request) {
		var req bbclient.FinishRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.finishes = append(b.finishes, req)
		b.held = nil
		b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(bbclient.FinishResponse{BuildRequestIDs: []int64{9}})
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

// source is a Buildbot source with the bridge's usual 20 s claim wait.
func (b *longPollBridge) source(t *testing.T) *BBSource {
	c, err := bbclient.New(b.srv.URL, bbclient.Options{Logger: claimTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewBBSource(BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", ClaimWait: 20, Logger: claimTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stopDuringClaim runs a, stops it once inFlight has seen its claim in
// flight, and fails the test unless Run returns cleanly within stopBound.
func stopDuringClaim(t *testing.T, a *Agent, inFlight func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	inFlight()
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent.Run: %v", err)
		}
	case <-time.After(claimTestDeadline):
		t.Fatal("the agent did not stop")
	}
	if took := time.Since(stopped); took > stopBound {
		t.Errorf("the agent took %s to stop during a long poll, want well under the 20 s poll (bound %s)", took, stopBound)
	}
}

func (b *longPollBridge) waitClaimInFlight(t *testing.T) {
	t.Helper()
	select {
	case <-b.inFlight:
	case <-time.After(claimTestDeadline):
		t.Fatal("no claim reached the bridge")
	}
}

// An agent of a Buildbot pool told to stop while its claim long-polls the
// bridge returns at once rather than after the poll.
func TestAgentStopAbandonsBridgeLongPoll(t *testing.T) {
	bridge := newLongPollBridge(t, false)
	a, err := New(Config{TaskUser: platform.TaskUserService, Source: bridge.source(t), TasksDir: filepath.Join(testTempDir(t), "tasks"), Logger: claimTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	stopDuringClaim(t, a, func() { bridge.waitClaimInFlight(t) })
	bridge.mu.Lock()
	defer bridge.mu.Unlock()
	// The bridge heard the claim, so the source asked once more for a
	// build it might hold; there was none, so nothing was finished.
	if len(bridge.claims) != 2 || bridge.claims[1].Wait != 0 || len(bridge.finishes) != 0 {
		t.Errorf("claims %+v, finishes %+v; want the long poll, one claim with no wait and no finish", bridge.claims, bridge.finishes)
	}
}

// A build the bridge claimed for a claim the agent then abandoned is
// given back: finished RETRY, so that the same request is pending again,
// rather than left claimed by an agent that will not run it.
func TestBBSourceGivesBackBuildOfAbandonedClaim(t *testing.T) {
	bridge := newLongPollBridge(t, true)
	s := bridge.source(t)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		runs []Run
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runs, err := s.Claim(ctx, 1)
		done <- result{runs, err}
	}()
	bridge.waitClaimInFlight(t)
	stopped := time.Now()
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(claimTestDeadline):
		t.Fatal("Claim did not return")
	}
	if took := time.Since(stopped); took > stopBound {
		t.Errorf("Claim took %s to return after the stop, want within %s", took, stopBound)
	}
	if res.err != nil || len(res.runs) != 0 {
		t.Fatalf("abandoned claim = %d runs, %v; want none and no error", len(res.runs), res.err)
	}
	bridge.mu.Lock()
	defer bridge.mu.Unlock()
	if len(bridge.claims) != 2 || bridge.claims[1].Wait != 0 || bridge.claims[1].Incarnation != bridge.claims[0].Incarnation {
		t.Fatalf("claims %+v, want the long poll then one claim with no wait for the same incarnation", bridge.claims)
	}
	if len(bridge.finishes) != 1 {
		t.Fatalf("finishes %+v, want the held build finished once", bridge.finishes)
	}
	if f := bridge.finishes[0]; f.BuildID != 41 || f.Result != bbclient.Retry || f.Incarnation != bridge.claims[0].Incarnation || f.WorkerID != "w" {
		t.Errorf("finish %+v, want build 41 RETRY by w and the claim's incarnation", f)
	}
}
