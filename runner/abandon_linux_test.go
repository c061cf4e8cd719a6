//go:build linux

package runner

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	bbclient "github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/provisioner/client"
)

// stopBound is how soon a drain or a move must take effect on an idle
// machine whose claim long-polls: well under the bridge's 20 s poll,
// generous for a loaded machine under -race.
const stopBound = 5 * time.Second

// idleBridge is the bridge's master API with no work: a claim waits its
// full wait, or until the agent hangs up.
type idleBridge struct {
	srv      *httptest.Server
	inFlight atomic.Int32
	claims   atomic.Int32
}

func newIdleBridge(t *testing.T) *idleBridge {
	b := &idleBridge{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req bbclient.ClaimRequest
		if r.URL.Path != "/api/v1/master/claim" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "not the claim call", http.StatusBadRequest)
			return
		}
		b.claims.Add(1)
		b.inFlight.Add(1)
		defer b.inFlight.Add(-1)
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Duration(req.Wait) * time.Second):
		}
		_ = json.NewEncoder(w).Encode(bbclient.ClaimResponse{})
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// TestBuildbotClaimAbandonedOnDrainAndMove: an idle machine of a Buildbot
// pool, its claim long-polling the bridge, is drained (status and the
// provisioner say drained) and moved (a task of its new pool runs) within
// a few seconds, not after the bridge's 20 s poll.
func TestBuildbotClaimAbandonedOnDrainAndMove(t *testing.T) {
	bridge := newIdleBridge(t)
	e := newProvEnv(t, map[string]any{"runner": map[string]any{"buildbot": map[string]any{"bridgeURL": bridge.srv.URL}}})
	rn, id := e.startLinked()
	ctx := e.prov.ctx()
	if _, err := e.prov.admin.PutPool(ctx, "bb", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep"}, MinCapacity: 1, MaxCapacity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.prov.admin.Assign(ctx, id, "bb", "Buildbot work"); err != nil {
		t.Fatal(err)
	}
	inFlight := func() {
		t.Helper()
		waitUntil(t, "a claim long-polling the bridge", func() bool { return bridge.inFlight.Load() > 0 }, nil)
	}
	inFlight()

	drained := time.Now()
	if _, err := rn.client.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(rn, "drained with no claim in flight", func(s *Status) bool { return s.Draining && !s.Polling })
	linkEventually(t, "the provisioner to see the machine drained", func() bool { return e.prov.machine(id).State == client.StateDrained })
	took := time.Since(drained)
	t.Logf("drained (status and provisioner) %s after the drain", took)
	if took > stopBound {
		t.Errorf("drain took %s to take effect during the bridge's long poll, want within %s", took, stopBound)
	}
	if n := bridge.inFlight.Load(); n != 0 {
		t.Errorf("%d claims still in flight at the bridge after the drain", n)
	}

	if _, err := rn.client.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	inFlight()
	task := e.createTask("echo moved")
	moved := time.Now()
	if _, err := e.prov.admin.Assign(ctx, id, "hello", "back to Taskcluster"); err != nil {
		t.Fatal(err)
	}
	if got := e.waitResolved(task); got != "completed" {
		t.Fatalf("task of the new pool resolved %s, want completed", got)
	}
	// The move drains, waits for drained, reassigns, restarts the agent
	// loop and claims: a few round trips, with no long poll to wait out.
	took = time.Since(moved)
	t.Logf("the new pool's task completed %s after the move", took)
	if took > 2*stopBound {
		t.Errorf("move to a Taskcluster pool took %s to run its task, want within %s", took, 2*stopBound)
	}
}
