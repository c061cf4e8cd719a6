package provisioner

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestBlackHoleCanaryOnlyBeforeTheEnd: quarantines the detector set that
// have ended stay ended when a pool sets a canary later, or when no
// replica judged them in time; the pool's cap counts the quarantines
// canaries extend, in the same pass; a pool over its cap lets a
// quarantine end rather than extend it.
func TestBlackHoleCanaryOnlyBeforeTheEnd(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), nil)
			canary := json.RawMessage(`{"command":[["/bin/sh","-c","exit 0"]],"maxRunTime":600}`)
			win := tcPool("p/win", 10, 10, 0, "windows")
			win.BlackHole = &client.BlackHolePolicy{QuarantineFor: "2h"} // cap: 1 of 10
			e.pool("win", win)
			mac := tcPool("p/mac", 4, 4, 0, "darwin")
			mac.BlackHole = &client.BlackHolePolicy{QuarantineFor: "2h", Canary: canary}
			e.pool("mac", mac)
			for i := range 10 {
				if reg, _ := e.enroll(winFacts(fmt.Sprintf("w%d", i))); reg.Assignment.PoolID != "win" {
					t.Fatalf("%s assigned to %q, want win", reg.MachineID, reg.Assignment.PoolID)
				}
			}
			for i := range 4 {
				if reg, _ := e.enroll(macFacts(fmt.Sprintf("m%d", i))); reg.Assignment.PoolID != "mac" {
					t.Fatalf("%s assigned to %q, want mac", reg.MachineID, reg.Assignment.PoolID)
				}
			}
			machine := func(id string) *MachineRecord {
				t.Helper()
				m, err := e.srv.store.GetMachine(e.ctx(), id)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			// held lists the quarantined machines of a pool (prefix w or m).
			held := func(prefix string) []string {
				t.Helper()
				ms, err := e.srv.store.ListMachines(e.ctx())
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, m := range ms {
					if strings.HasPrefix(m.MachineID, prefix) && quarantined(m, e.clock.Now()) {
						out = append(out, m.MachineID+": "+m.QuarantineReason)
					}
				}
				return out
			}
			detect := func() {
				t.Helper()
				if err := e.srv.DetectOnce(e.ctx()); err != nil {
					t.Fatal(err)
				}
			}
			quarantine := func(id string) {
				t.Helper()
				if err := e.srv.quarantineBlackHole(e.ctx(), machine(id), verdict{machineID: id}, "black hole: 9 of its last 10 runs failed",
					e.clock.Now().Add(2*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			// Six rounds of runs finishing now: bad fails all of its own,
			// the others pass theirs.
			task := 0
			runs := func(bad string) {
				t.Helper()
				now := e.clock.Now()
				for i := range 10 {
					id := fmt.Sprintf("w%d", i)
					if quarantined(machine(id), now) {
						continue
					}
					var batch []RunRecord
					for r := range 6 {
						task++
						res, exit := client.ResultCompleted, 0
						if id == bad {
							res, exit = client.ResultFailed, 1
						}
						at := now.Add(time.Duration(r-6)*10*time.Minute + time.Duration(i)*time.Second)
						batch = append(batch, RunRecord{PoolID: "win", MachineID: id, RunReport: client.RunReport{TaskID: fmt.Sprintf("t%04d", task),
							Kind: client.KindTaskcluster, Result: res, ExitCode: &exit, Started: at, Finished: at.Add(5 * time.Minute)}})
					}
					if _, err := e.srv.store.AddRunReports(e.ctx(), batch, now); err != nil {
						t.Fatal(err)
					}
				}
			}

			// w0 was quarantined a week ago, its end seen by a detector
			// pass; w1's quarantine ended while no replica led.
			quarantine("w0")
			e.clock.Add(3 * time.Hour)
			detect()
			quarantine("w1")
			e.clock.Add(7 * 24 * time.Hour)
			if h := held("w"); len(h) != 0 {
				t.Fatalf("quarantined a week on: %v", h)
			}
			// Now the pool sets a canary, and w2 starts failing: the pass
			// quarantines w2, and sends no canary for quarantines long over.
			win.BlackHole.Canary = canary
			e.pool("win", win)
			runs("w2")
			detect()
			if h := held("w"); len(h) != 1 || !strings.HasPrefix(h[0], "w2: black hole: 6 of its last 6 runs failed") {
				t.Fatalf("after the pool set a canary, quarantined %q, want w2 alone, for its runs", h)
			}
			ws, err := e.srv.store.Watches(e.ctx())
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"w0", "w1"} {
				if w := ws[id]; w.AutoUntil != nil || w.CanaryTask != "" {
					t.Errorf("%s's watch %+v after its quarantine ended, want no quarantine nor canary", id, w)
				}
			}

			// w2 holds the pool's one place: w3 failing waits for it.
			e.clock.Add(time.Hour)
			runs("w3")
			detect()
			if h := held("w"); len(h) != 1 || !strings.HasPrefix(h[0], "w2: ") {
				t.Fatalf("with w2 held, quarantined %q, want w2 alone", h)
			}
			// Shortly before w2's end its canary extends its quarantine,
			// which still fills the place in the same pass.
			e.clock.Add(time.Hour - 30*time.Second)
			runs("w4")
			detect()
			if h := held("w"); len(h) != 1 || !strings.HasPrefix(h[0], "w2: canary running") {
				t.Fatalf("w2's canary sent: quarantined %q, want w2 alone, canary running", h)
			}

			// Another pool's cap lowered under what it holds: of m0 and
			// m1, ending at once, one gets its canary and the other's
			// quarantine ends.
			mac.BlackHole.MaxQuarantinedShare = 0.5
			e.pool("mac", mac)
			quarantine("m0")
			quarantine("m1")
			mac.BlackHole.MaxQuarantinedShare = 0.25
			e.pool("mac", mac)
			e.clock.Add(2*time.Hour - 30*time.Second)
			detect()
			h := held("m")
			if len(h) != 2 || strings.Contains(h[0], "canary") == strings.Contains(h[1], "canary") {
				t.Errorf("two held, over a cap of one, at their end: %q, want one canary, the other quarantine left to end", h)
			}
			e.clock.Add(time.Minute)
			detect()
			if h := held("m"); len(h) != 1 || !strings.Contains(h[0], ": canary running") {
				t.Errorf("after the end, quarantined %q, want one machine, its canary running", h)
			}
			metrics := scrape(t, e.url)
			for _, w := range []string{
				`labrunner_provisioner_blackhole_canaries_total{outcome="started",pool="win"} 1`,
				`labrunner_provisioner_blackhole_canaries_total{outcome="started",pool="mac"} 1`,
				`labrunner_provisioner_blackhole_capped_total{pool="mac"} 1`,
			} {
				if !strings.Contains(metrics, w) {
					t.Errorf("metrics lack %q", w)
				}
			}
		})
	}
}
