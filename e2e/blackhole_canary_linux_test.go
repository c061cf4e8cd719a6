//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// TestBlackHoleCanary: three runners serve a pool whose black holes run a
// canary when their quarantine ends. The machine whose directory holds a
// marker file fails its tasks and is quarantined; its canaries (the same
// marker test, run by the real runner while quarantined) fail and renew
// the quarantine; once the marker is gone the next canary passes, the
// provisioner releases the machine and it claims again. A failed canary's
// report carries its log, which says why it failed.
func TestBlackHoleCanary(t *testing.T) {
	canary, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", brokenOnMarker}}, "maxRunTime": 60})
	// A short quarantine: the canary is due at once, and again after each
	// failure. Tasks and canaries fail on bh-0, whose marker is written.
	l := newBlackHoleLab(t, "canary-", client.BlackHolePolicy{MaxQuarantinedShare: 0.34, QuarantineFor: "5s", Canary: canary},
		func(c *provisioner.Config) { c.DetectInterval = 100 * time.Millisecond })
	srv, admin, status, marker := l.srv, l.admin, l.status, l.marker
	for range 30 {
		l.createTask(t)
	}
	canaries := func(result string) []provisioner.RunRecord {
		runs, err := srv.Store().RunReports(context.Background(), "bh", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(runs, func(r provisioner.RunRecord) bool { return r.Kind != client.KindCanary || r.Result != result })
	}
	// Quarantined, then two canaries fail: the quarantine holds.
	waitFor(t, "two failed canaries of bh-0", func() bool { return len(canaries(client.ResultFailed)) >= 2 })
	for _, r := range canaries(client.ResultFailed) {
		if r.MachineID != "bh-0" || r.ExitCode == nil || *r.ExitCode != 1 {
			t.Errorf("failed canary %s on %s exit %v, want bh-0's, exit 1", r.TaskID, r.MachineID, r.ExitCode)
		}
	}
	m, err := admin.GetMachine(context.Background(), "bh-0")
	if err != nil {
		t.Fatal(err)
	}
	if m.QuarantinedUntil == nil || !m.QuarantinedUntil.After(time.Now()) {
		t.Fatalf("bh-0 not quarantined after failed canaries: %v %q", m.QuarantinedUntil, m.QuarantineReason)
	}
	if !slices.ContainsFunc(m.Actions, func(a client.Action) bool {
		return a.Action == "quarantine" && strings.Contains(a.Why, "black hole: canary failed: failed, exit code 1")
	}) {
		t.Errorf("bh-0's actions %+v lack the renewal after a failed canary", m.Actions)
	}
	// Why it failed: the canary's output, in its report.
	if c := m.LastCanary; c == nil || c.Result != client.ResultFailed || !strings.Contains(c.Log, "broken machine\n") || !strings.Contains(c.Log, "Result: failed") {
		t.Errorf("bh-0's last canary %+v, want a failed one whose log says why", c)
	}
	st := status["bh-0"]()
	if st == nil || st.Quarantine == nil || st.Quarantine.Source != runner.SourceProvisioner {
		t.Fatalf("bh-0's runner status %+v, want the provisioner's quarantine", st)
	}
	if !slices.ContainsFunc(st.RecentTasks, func(r runner.RecentTaskStatus) bool { return r.Kind == runner.SourceCanary }) {
		t.Errorf("bh-0's recent tasks %+v show no canary", st.RecentTasks)
	}

	// Repaired: the next canary passes and the machine is released.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bh-0 released by a passing canary", func() bool {
		st = status["bh-0"]()
		return len(canaries(client.ResultCompleted)) > 0 && st != nil && st.Quarantine == nil
	})
	for _, r := range canaries(client.ResultCompleted) {
		if r.MachineID != "bh-0" {
			t.Errorf("a canary ran on %s", r.MachineID)
		}
	}
	if m, _ = admin.GetMachine(context.Background(), "bh-0"); m.QuarantinedUntil != nil {
		t.Errorf("bh-0 still quarantined in the registry: %v %q", m.QuarantinedUntil, m.QuarantineReason)
	}
	waitFor(t, "bh-0 claiming again", func() bool { st = status["bh-0"](); return st != nil && st.Polling })
	t.Logf("bh-0: %d canaries failed, then one passed", len(canaries(client.ResultFailed)))
}
