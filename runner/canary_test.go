//go:build unix

package runner

import (
	"encoding/json"
	"testing"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

// TestCanaryDirectives: a quarantine's canary is kept once (a directive
// delivered again keeps it, one already run is not run twice), a
// quarantine without one drops it, one the agent cannot read is recorded
// as failed, and a canary run is handed over only while the provisioner's
// quarantine holds, stays out of heartbeats and is reported as kind canary.
func TestCanaryDirectives(t *testing.T) {
	e := newEnv(t, nil)
	r, err := New(e.ac, e.rc, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r.booting, r.firstPassDone = false, true
	good := json.RawMessage(`{"command":[["/bin/sh","-c","exit 0"]],"maxRunTime":60}`)
	quarantine := func(c *client.Canary) {
		t.Helper()
		if err := r.handleDirective(t.Context(), client.Directive{Kind: client.DirectiveQuarantine, Reason: "black hole", Canary: c}); err != nil {
			t.Fatal(err)
		}
	}
	due := func() agent.Run {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.canaryDue()
	}

	quarantine(&client.Canary{TaskID: "canary-a", Payload: good})
	quarantine(&client.Canary{TaskID: "canary-a", Payload: good})
	if c := r.st.Canary; c == nil || c.TaskID != "canary-a" {
		t.Fatalf("kept canary %+v, want canary-a", c)
	}
	quarantine(nil)
	if r.st.Canary != nil || r.st.Quarantine == nil {
		t.Fatalf("a quarantine without a canary: kept %+v, quarantine %+v; want none kept, still quarantined", r.st.Canary, r.st.Quarantine)
	}

	quarantine(&client.Canary{TaskID: "canary-bad", Payload: json.RawMessage(`"exit 0"`)})
	if run := due(); run != nil || r.st.Canary != nil {
		t.Fatalf("an unreadable canary handed over (%v) or kept (%+v)", run, r.st.Canary)
	}
	if rec := r.st.RecentTasks[0]; rec.TaskID != "canary-bad" || rec.Kind != SourceCanary || rec.Resolution != "exception/malformed-payload" {
		t.Errorf("unreadable canary recorded as %+v, want an exception/malformed-payload canary", rec)
	}

	quarantine(&client.Canary{TaskID: "canary-c", Payload: good})
	r.mu.Lock()
	q := r.st.Quarantine
	r.st.Quarantine = nil
	r.mu.Unlock()
	if run := due(); run != nil {
		t.Fatal("a canary handed over with no quarantine from the provisioner")
	}
	r.st.Quarantine = q
	run := due()
	if run == nil || run.TaskID() != "canary-c" {
		t.Fatalf("canary handed over: %v, want canary-c", run)
	}
	if again := due(); again != nil {
		t.Fatal("the canary handed over twice while it runs")
	}
	if hb := r.snapshot(); hb.CurrentTask != nil || hb.State != client.StateBusy {
		t.Errorf("heartbeat while the canary runs: %+v, want busy with no current task", hb)
	}
	r.runDone(run, agent.RunResult{Reported: true, Resolution: agent.Resolution{State: agent.StateFailed}, ExitCode: 1})
	rec := r.st.RecentTasks[0]
	if r.st.Canary != nil || rec.TaskID != "canary-c" || rec.Kind != SourceCanary {
		t.Fatalf("after the canary: kept %+v, recorded %+v", r.st.Canary, rec)
	}
	if rep, ok := runReport(rec, agent.RunResult{Reported: true, Resolution: agent.Resolution{State: agent.StateFailed}, ExitCode: 1}); !ok || rep.Kind != client.KindCanary || rep.Result != client.ResultFailed {
		t.Errorf("canary reported as %+v (%v), want a failed run of kind canary", rep, ok)
	}
	quarantine(&client.Canary{TaskID: "canary-c", Payload: good})
	if r.st.Canary != nil {
		t.Error("a canary already run is kept again from a directive delivered twice")
	}
}
