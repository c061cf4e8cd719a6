package provisioner

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestBlackHoleCanary follows the detector's quarantines to their end on
// both stores: a pool with a canary sends it (and keeps the machine
// quarantined) shortly before the end; a completed canary releases the
// machine, a failed one and one that never reports quarantine it again;
// a pool without a canary lets the quarantine end as it always did.
func TestBlackHoleCanary(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), nil)
			canary := json.RawMessage(`{"command":[["/bin/sh","-c","test ! -e /tmp/broken"]],"maxRunTime":600}`)
			win := tcPool("p/win", 2, 2, 0, "windows")
			// Both machines are held at once: the cap is the whole pool.
			win.BlackHole = &client.BlackHolePolicy{QuarantineFor: "2h", Canary: canary, MaxQuarantinedShare: 1}
			e.pool("win", win)
			mac := tcPool("p/mac", 1, 1, 0, "darwin")
			mac.BlackHole = &client.BlackHolePolicy{QuarantineFor: "2h"}
			e.pool("mac", mac)
			mcs := map[string]*client.Client{}
			for _, f := range []client.Facts{winFacts("w0"), winFacts("w1"), macFacts("m0")} {
				reg, mc := e.enroll(f)
				mcs[reg.MachineID] = mc
			}
			machine := func(id string) *client.MachineDetail {
				t.Helper()
				m, err := e.admin.GetMachine(e.ctx(), id)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			lastDirective := func(id string) client.Directive {
				t.Helper()
				ds, err := mcs[id].Directives(e.ctx(), id, 0, 0)
				if err != nil || len(ds) == 0 {
					t.Fatalf("directives of %s: %v, %v", id, ds, err)
				}
				return ds[len(ds)-1]
			}
			detect := func() {
				t.Helper()
				if err := e.srv.DetectOnce(e.ctx()); err != nil {
					t.Fatal(err)
				}
			}
			report := func(id, task, result string, exit int) {
				t.Helper()
				now := e.clock.Now()
				res, err := mcs[id].ReportRuns(e.ctx(), id, []client.RunReport{{TaskID: task, Kind: client.KindCanary, Result: result,
					ExitCode: &exit, Started: now.Add(-time.Minute), Finished: now}})
				if err != nil || res.Accepted != 1 {
					t.Fatalf("report the canary of %s: %+v, %v", id, res, err)
				}
			}
			// The detector quarantines all three for 2 h.
			end := e.clock.Now().Add(2 * time.Hour)
			for _, id := range []string{"w0", "w1", "m0"} {
				m, err := e.srv.store.GetMachine(e.ctx(), id)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.srv.quarantineBlackHole(e.ctx(), m, verdict{machineID: id}, "black hole: 9 of its last 10 runs failed", end); err != nil {
					t.Fatal(err)
				}
			}
			detect()
			if d := lastDirective("w0"); d.Canary != nil {
				t.Fatalf("a canary sent %s before the quarantine's end: %+v", time.Until(end), d)
			}

			// Shortly before the end: w0 and w1 get their canaries and stay
			// quarantined past their deadline; m0's pool has none.
			e.clock.Add(2*time.Hour - 30*time.Second)
			detect()
			tasks := map[string]string{}
			deadline := e.clock.Now().Add(600*time.Second + canaryGrace)
			for _, id := range []string{"w0", "w1"} {
				d := lastDirective(id)
				if d.Kind != client.DirectiveQuarantine || d.Canary == nil || d.Canary.TaskID == "" || string(d.Canary.Payload) != string(canary) {
					t.Fatalf("%s's last directive %+v, want a quarantine with the pool's canary", id, d)
				}
				m := machine(id)
				if m.QuarantinedUntil == nil || !m.QuarantinedUntil.Equal(deadline.Add(2*time.Hour)) || !strings.HasPrefix(m.QuarantineReason, "canary running (task "+d.Canary.TaskID) {
					t.Fatalf("%s quarantined until %v for %q, want until the canary's deadline + 2 h, canary running", id, m.QuarantinedUntil, m.QuarantineReason)
				}
				if d.Until == nil || !d.Until.Equal(*m.QuarantinedUntil) {
					t.Errorf("%s's directive until %v, want %v", id, d.Until, m.QuarantinedUntil)
				}
				tasks[id] = d.Canary.TaskID
			}
			if tasks["w0"] == tasks["w1"] {
				t.Errorf("both canaries have task %s; each needs its own", tasks["w0"])
			}
			if d := lastDirective("m0"); d.Canary != nil {
				t.Errorf("m0 (pool without a canary) sent one: %+v", d)
			}
			detect() // nothing reported yet: nothing changes, no second canary
			if d := lastDirective("w0"); d.Canary == nil || d.Canary.TaskID != tasks["w0"] {
				t.Errorf("w0's last directive %+v after a quiet pass, want its canary %s still", d, tasks["w0"])
			}

			// w0's canary completes, w1's fails.
			e.clock.Add(5 * time.Minute)
			report("w0", tasks["w0"], client.ResultCompleted, 0)
			report("w1", tasks["w1"], client.ResultFailed, 1)
			detect()
			if m := machine("w0"); m.QuarantinedUntil != nil {
				t.Errorf("w0 still quarantined after its canary passed: %v, %q", m.QuarantinedUntil, m.QuarantineReason)
			} else if len(m.Actions) == 0 || m.Actions[0].Action != "unquarantine" || m.Actions[0].Who != detectorName || !strings.Contains(m.Actions[0].Why, "canary passed") {
				t.Errorf("w0's last action %+v, want its release by the detector", m.Actions)
			}
			if d := lastDirective("w0"); d.Kind != client.DirectiveUnquarantine {
				t.Errorf("w0's last directive %+v, want unquarantine", d)
			}
			m1 := machine("w1")
			renewed := e.clock.Now().Add(2 * time.Hour)
			want := "black hole: canary failed: failed, exit code 1 (task " + tasks["w1"] + ")"
			if m1.QuarantinedUntil == nil || !m1.QuarantinedUntil.Equal(renewed) || m1.QuarantineReason != want {
				t.Fatalf("w1 quarantined until %v for %q, want until %v for %q", m1.QuarantinedUntil, m1.QuarantineReason, renewed, want)
			}
			if d := lastDirective("w1"); d.Kind != client.DirectiveQuarantine || d.Canary != nil || d.Reason != want {
				t.Errorf("w1's last directive %+v, want the renewed quarantine", d)
			}
			// A canary's run is not the pool's work: the detector does not judge it.
			if runs, _ := e.srv.runs.window(e.ctx(), e.srv.store, "win", e.clock.Now().Add(-24*time.Hour), e.clock.Now()); len(runs) != 0 {
				t.Errorf("the detector's runs hold %d canary runs, want none", len(runs))
			}
			// m0's quarantine ended by itself, with no canary.
			if m := machine("m0"); m.QuarantinedUntil == nil || m.QuarantinedUntil.After(e.clock.Now()) || m.QuarantineReason != "black hole: 9 of its last 10 runs failed" {
				t.Errorf("m0: quarantined until %v for %q, want its ended quarantine untouched", m.QuarantinedUntil, m.QuarantineReason)
			}

			// w1's next canary never reports: quarantined again at its deadline.
			e.clock.Add(2*time.Hour - 30*time.Second)
			detect()
			d := lastDirective("w1")
			if d.Canary == nil || d.Canary.TaskID == tasks["w1"] {
				t.Fatalf("w1's last directive %+v, want a new canary", d)
			}
			e.clock.Add(600*time.Second + canaryGrace - time.Second)
			detect()
			if m := machine("w1"); !strings.HasPrefix(m.QuarantineReason, "canary running") {
				t.Fatalf("w1 judged before its canary's deadline: %q", m.QuarantineReason)
			}
			e.clock.Add(time.Second)
			detect()
			m1 = machine("w1")
			if m1.QuarantinedUntil == nil || !m1.QuarantinedUntil.Equal(e.clock.Now().Add(2*time.Hour)) ||
				!strings.HasPrefix(m1.QuarantineReason, "black hole: canary failed: no report by ") || !strings.Contains(m1.QuarantineReason, d.Canary.TaskID) {
				t.Errorf("w1 quarantined until %v for %q after its canary's deadline, want 2 h more, no report", m1.QuarantinedUntil, m1.QuarantineReason)
			}
			// Reported late, the timed-out canary changes nothing.
			report("w1", d.Canary.TaskID, client.ResultCompleted, 0)
			detect()
			if m := machine("w1"); m.QuarantineReason != m1.QuarantineReason {
				t.Errorf("a late canary report changed w1's quarantine to %q", m.QuarantineReason)
			}
			metrics := scrape(t, e.url)
			for _, w := range []string{
				`labrunner_provisioner_blackhole_canaries_total{outcome="started",pool="win"} 3`,
				`labrunner_provisioner_blackhole_canaries_total{outcome="passed",pool="win"} 1`,
				`labrunner_provisioner_blackhole_canaries_total{outcome="failed",pool="win"} 1`,
				`labrunner_provisioner_blackhole_canaries_total{outcome="timeout",pool="win"} 1`,
			} {
				if !strings.Contains(metrics, w) {
					t.Errorf("metrics lack %q", w)
				}
			}
		})
	}
}

// TestBlackHoleCanaryValidation refuses canaries the agent could not run,
// naming the field.
func TestBlackHoleCanaryValidation(t *testing.T) {
	e := newEnv(t, storeKinds[0].url(t), nil)
	for _, c := range []struct{ canary, field string }{
		{`"exit 0"`, "blackHole.canary"},
		{`null`, "blackHole.canary"},
		{`{"maxRunTime":60}`, "blackHole.canary.command"},
		{`{"command":[],"maxRunTime":60}`, "blackHole.canary.command"},
		{`{"command":[["true"]]}`, "blackHole.canary.maxRunTime"},
		{`{"command":[["true"]],"maxRunTime":90000}`, "blackHole.canary.maxRunTime"},
	} {
		body := `{"source":"taskcluster","taskQueueId":"p/win","maxCapacity":2,"blackHole":{"canary":` + c.canary + `}}`
		status, ce := e.raw("PUT", "/api/v1/pools/win", testAdminToken, body)
		if status != 400 || ce.Field != c.field {
			t.Errorf("canary %s: %d, field %q (%s), want 400 naming %s", c.canary, status, ce.Field, ce.Message, c.field)
		}
	}
	body := `{"source":"taskcluster","taskQueueId":"p/win","maxCapacity":2,"blackHole":{"canary":{"command":[["true"]],"maxRunTime":60}}}`
	if status, ce := e.raw("PUT", "/api/v1/pools/win", testAdminToken, body); status != 201 {
		t.Errorf("a good canary: %d %+v", status, ce)
	}
}
