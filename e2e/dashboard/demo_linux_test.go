package dashboard

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
)

// TestDashboardDemoPages: on the system `devstack demo` leaves running
// (two pools, three runners, the scenario's tasks, quarantine, reboot
// and move), the main page shows every pool and machine as the API does;
// after a quarantine through the table, the machine's page shows its
// whole record, newest first, as the API does. Its screenshots are the
// populated pictures of docs/dashboard.md.
func TestDashboardDemoPages(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo's scenario takes a minute")
	}
	e := browsertest.StartDemo(t)
	ctx := context.Background()
	br := e.Browser(t)
	br.Login(e.AdminToken, "ops", "")
	pools, err := e.Admin.ListPools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := br.Count(`tr.pool`); n != len(pools) {
		t.Errorf("%d pool rows, want the %d pools", n, len(pools))
	}
	machines, err := e.Admin.ListMachines(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := br.Count(`tr.machine`); n != len(machines) {
		t.Errorf("%d machine rows, want the %d machines", n, len(machines))
	}
	for _, m := range machines {
		if br.Count(row(m.MachineID)) != 1 {
			t.Errorf("machine %s has no row", m.MachineID)
		}
	}
	victim := e.Runners[len(e.Runners)-1].MachineID
	br.Do(chromedp.Click(chromedp.CSS(row(victim))),
		chromedp.SendKeys(chromedp.CSS(`#machines-form input[name=reason]`), "USB hub resets under load"),
		chromedp.SetValue(chromedp.CSS(`#machines-form input[name=duration]`), "2d"))
	br.Submit(`#machines-form button[value=quarantine]`)
	if br.Count(row(victim, "quarantined")) != 1 {
		t.Errorf("%s's row is not shown quarantined", victim)
	}
	br.Screenshot("dashboard-demo")

	br.Navigate("/dashboard/machines/" + victim)
	d, err := e.Admin.GetMachine(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if n := br.Count(`table.actions tbody tr`); n != len(d.Actions) || n < 2 {
		t.Errorf("machine %s's page lists %d actions, the API %d", victim, n, len(d.Actions))
	}
	first := br.Text(`table.actions tbody tr`)
	if a := d.Actions[0]; a.Action != "quarantine" || !strings.Contains(first, "quarantine") || !strings.Contains(first, "ops via config adminTokens[0] (dashboard)") {
		t.Errorf("newest action shown %q (API: %s by %s), want ops's quarantine", first, a.Action, a.Who)
	}
	br.Screenshot("dashboard-demo-machine")

	// The history pages, as their API answers.
	hist, err := e.Admin.PoolHistory(ctx, e.PoolID, "5m")
	if err != nil {
		t.Fatal(err)
	}
	br.Navigate("/dashboard/pools/" + e.PoolID + "?range=5m")
	if len(hist.Points) == 0 || br.Count(`figure svg`) < 3 {
		t.Errorf("pool history: %d points from the API, %d charts on the page", len(hist.Points), br.Count(`figure svg`))
	}
	br.Screenshot("dashboard-pool-history")
	busiest := e.Runners[0].MachineID
	tl, err := e.Admin.MachineTimeline(ctx, busiest, "1m")
	if err != nil {
		t.Fatal(err)
	}
	br.Navigate("/dashboard/machines/" + busiest + "/history?range=1m")
	if n := br.Count(`tr.run`); n != len(tl.Runs) || n == 0 {
		t.Errorf("%s's timeline lists %d runs, the API %d", busiest, n, len(tl.Runs))
	}
	br.Screenshot("dashboard-machine-timeline")

	t.Run("every linked page", func(t *testing.T) { everyLinkedPage(t, e) })
}

// everyLinkedPage follows every dashboard link from the main page, two
// levels deep (pools, machines, their histories and whatever pages are
// linked beside them): each answers 200 and breaks nothing of the
// Content-Security-Policy (no script, style or image it refuses).
func everyLinkedPage(t *testing.T, e *browsertest.Env) {
	br := e.Browser(t)
	br.WatchCSP()
	br.Login(e.ReadOnlyToken, "", "")
	seen := map[string]bool{}
	level := []string{"/dashboard"}
	for depth := 0; depth < 3 && len(level) > 0; depth++ {
		var next []string
		for _, p := range level {
			if seen[p] {
				continue
			}
			seen[p] = true
			if status := br.Open(p); status != 200 {
				t.Errorf("GET %s: %d", p, status)
				continue
			}
			if v := br.CSPViolations(); len(v) > 0 {
				t.Errorf("GET %s breaks the Content-Security-Policy: %v", p, v)
			}
			next = append(next, br.DashboardLinks()...)
		}
		level = next
	}
	if len(seen) < 2+2*len(e.Runners) {
		t.Errorf("only %d pages reached from /dashboard: %v", len(seen), seen)
	}
	t.Logf("%d dashboard pages checked", len(seen))
}
