package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
)

// TestDashboardHistoryWhyAndMap: in headless Chromium against a devstack
// with one real runner, which runs a task and is then quarantined, an
// admin asks the why page about a task left pending and reads the
// explanation (the one machine that could take it is quarantined, and
// why), then opens the system map, the pool's history and the machine's
// timeline; the why page and the map are screenshotted (the demo's test
// takes the history's pictures).
func TestDashboardHistoryWhyAndMap(t *testing.T) {
	e := browsertest.Start(t, browsertest.Options{Runners: 1})
	m := e.Runners[0].MachineID
	runAllOn(t, e, m, 1)
	ctx := context.Background()
	if _, err := e.Admin.Quarantine(ctx, m, "GPU driver hangs", time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.WaitFor("runner "+m+" to hear of its quarantine", func() bool {
		s, err := e.Runners[0].Control.Status(ctx)
		return err == nil && s.Quarantine != nil
	})
	task := e.SubmitTask("waits for a machine", "true")

	br := e.Browser(t)
	br.Login(e.AdminToken, admin, "")
	br.Navigate("/dashboard/why")
	br.Do(chromedp.SendKeys(chromedp.CSS(`#why-q`), task))
	br.Submit(`form.why button`)
	summary := br.Text(`p.summary`)
	if !strings.Contains(summary, "is pending on "+e.TaskQueueID) || !strings.Contains(summary, "1 machine could take it: 0 idle, 0 busy, 1 quarantined") {
		t.Errorf("why page summary %q", summary)
	}
	if reason := br.Text(`table.why-machines tr.why-machine.quarantined`); !strings.Contains(reason, m) || !strings.Contains(reason, "GPU driver hangs") {
		t.Errorf("the machine's row says %q, want %s quarantined for the GPU", reason, m)
	}
	if ex := br.Text(`ul.explanation`); !strings.Contains(ex, m+" is quarantined until") {
		t.Errorf("explanation %q does not name the quarantine", ex)
	}
	br.Screenshot("dashboard-why")

	br.Navigate("/dashboard/map")
	if n := br.Count(`#system-map g.component`); n < 6 {
		t.Errorf("the map draws %d components, want the queue, Pulse, the bridge, a replica and three databases", n)
	}
	if bad := br.Count(`#system-map g.component[data-health=down]`); bad != 0 {
		t.Errorf("%d components down on a healthy devstack: %s", bad, br.Text(`table.components`))
	}
	br.Screenshot("dashboard-map")

	// History: the assigner replica sampled when it took the lock, so
	// the charts have at least one point; the timeline shows the run.
	e.WaitFor("a history sample", func() bool {
		h, err := e.Admin.PoolHistory(ctx, e.PoolID, "24h")
		return err == nil && len(h.Points) > 0
	})
	// A young system: the last 15 minutes show its few points.
	br.Navigate("/dashboard/pools/" + e.PoolID + "?range=15m")
	if n := br.Count(`#chart-machines path.series`); n != 4 {
		t.Errorf("machines chart has %d series, want 4", n)
	}
	if n := br.Count(`#chart-durations rect.bar[data-runs="1"]`); n != 1 {
		t.Errorf("the durations histogram has %d bars of 1 run, want the one task's", n)
	}
	// The runner reports each finished run: the timeline colours it.
	e.WaitFor("the runner's report of its run", func() bool {
		tl, err := e.Admin.MachineTimeline(ctx, m, "15m")
		if err != nil {
			return false
		}
		for _, r := range tl.Runs {
			if r.Result == "completed" {
				return true
			}
		}
		return false
	})
	br.Navigate("/dashboard/machines/" + m + "/history?range=15m")
	if n := br.Count(`#chart-timeline rect.run.result-completed`); n < 1 {
		t.Errorf("the timeline draws %d completed runs, want the task's", n)
	}
	if n := br.Count(`#chart-timeline path.reboot-boot`); n != 1 {
		t.Errorf("the timeline draws %d boots, want the registration", n)
	}

	if a, err := e.Admin.WhyTask(ctx, task); err != nil || a.State != "pending" {
		t.Fatalf("why over the API: %v %+v", err, a)
	}
}
