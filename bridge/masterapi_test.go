package bridge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/client"
)

// The master API's rules (docs/bridge.md, "Master API for agents"): a claim
// with nothing pending gets no build, requests are claimed in the master's
// order (priority first), a finish or heartbeat for a build another worker or
// incarnation holds is refused or told cancelled, a repeated finish is
// harmless, and bad input gets a 400 that names the field.
func TestMasterAPI(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		ctx := context.Background()
		c := rb.client

		// Nothing pending: a claim returns no build.
		if b, err := c.Claim(ctx, client.ClaimRequest{WorkerID: "w", Builders: []string{goodBuilder}}); err != nil || b != nil {
			t.Fatalf("claim with nothing pending = %+v, %v", b, err)
		}
		// Bad input names the field.
		for _, bad := range []client.ClaimRequest{{Builders: []string{goodBuilder}}, {WorkerID: "w"}, {WorkerID: "w", Builders: []string{"nope"}}} {
			_, err := c.Claim(ctx, bad)
			var ae *client.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Message == "" {
				t.Errorf("claim %+v: err %v, want 400 naming the field", bad, err)
			}
		}

		// Pending per builder, and the master's order: priority first.
		low := e.createTask(payload(goodBuilder), nil)
		high := e.createTask(payload(goodBuilder), func(d *tcqueue.TaskDefinitionRequest) { d.Priority = "high" })
		e.waitRow(low)
		e.waitRow(high)
		pending, err := c.Pending(ctx)
		if err != nil || pending[goodBuilder] != 2 {
			t.Fatalf("pending = %v, %v; want 2 for %s", pending, err, goodBuilder)
		}
		a := e.agent(rb, "w1")
		if b := a.claim(); b.TaskID != high {
			t.Errorf("first claim got task %s, want the high-priority %s", b.TaskID, high)
		}
		if p, _ := c.Pending(ctx); p[goodBuilder] != 1 {
			t.Errorf("pending after a claim = %v, want 1", p)
		}

		// Finish with a bad result, or for a build another worker holds.
		_, err = c.Finish(ctx, client.FinishRequest{WorkerID: "w1", Incarnation: a.build.Incarnation, BuildID: a.build.BuildID, Result: 9})
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "result") {
			t.Errorf("finish with result 9: %v, want 400 about result", err)
		}
		_, err = c.Finish(ctx, client.FinishRequest{WorkerID: "intruder", Incarnation: "x", BuildID: a.build.BuildID, Result: 0})
		if !errors.Is(err, client.ErrConflict) {
			t.Errorf("finish by another worker: %v, want a conflict", err)
		}
		if _, err := c.Heartbeat(ctx, client.HeartbeatRequest{WorkerID: "w1", Incarnation: "i", BuildID: 987654}); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			t.Errorf("heartbeat for a missing build: %v, want 404", err)
		}
		// A heartbeat from a different incarnation no longer holds the request.
		if hb, err := c.Heartbeat(ctx, client.HeartbeatRequest{WorkerID: "w1", Incarnation: "other", BuildID: a.build.BuildID}); err != nil || !hb.Cancelled {
			t.Errorf("heartbeat by another incarnation = %+v, %v; want cancelled", hb, err)
		}
		a.finish(client.Success, nil, "")
		e.waitRun(high, 0, "completed", "")
		// A repeated finish (the answer was lost) is harmless.
		a.finish(client.Success, nil, "")

		// Status and metrics are served.
		raw, err := c.Status(ctx)
		if err != nil || !strings.Contains(string(raw), `"tasks":`) {
			t.Errorf("status = %s, %v", raw, err)
		}
		resp, err := http.Get(rb.srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), "bridge_build_requests_injected_total 2") || !strings.Contains(string(body), "bridge_tasks_tracked") {
			t.Errorf("metrics lack the bridge's series:\n%s", body)
		}
	})
}

// A claim repeated with the same worker and incarnation (its answer was
// lost) returns the same build instead of leaving that request orphaned.
func TestMasterAPIClaimIsRepeatable(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newEnv(t, s, envOpts{})
		rb := e.start()
		ctx := context.Background()
		t1, t2 := e.createTask(payload(goodBuilder), nil), e.createTask(payload(goodBuilder), nil)
		e.waitRow(t1)
		e.waitRow(t2)
		req := client.ClaimRequest{WorkerID: "w", Incarnation: "boot-1", Builders: []string{goodBuilder}}
		first, err := rb.client.Claim(ctx, req)
		if err != nil || first == nil {
			t.Fatalf("claim = %v, %v", first, err)
		}
		again, err := rb.client.Claim(ctx, req)
		if err != nil || again == nil || again.BuildID != first.BuildID {
			t.Fatalf("repeated claim = %+v, %v; want build %d again", again, err, first.BuildID)
		}
		// A new incarnation of the worker (it restarted) takes over what
		// the old one held, as a restarted master does, with a new build.
		req.Incarnation = "boot-2"
		other, err := rb.client.Claim(ctx, req)
		if err != nil || other == nil || other.BuildRequestID != first.BuildRequestID || other.BuildID == first.BuildID {
			t.Fatalf("claim by a new incarnation = %+v, %v; want request %d with a new build", other, err, first.BuildRequestID)
		}
		// Another worker gets the other request.
		req.WorkerID = "w2"
		w2, err := rb.client.Claim(ctx, req)
		if err != nil || w2 == nil || w2.BuildRequestID == first.BuildRequestID {
			t.Fatalf("claim by another worker = %+v, %v; want the other request", w2, err)
		}
	})
}
