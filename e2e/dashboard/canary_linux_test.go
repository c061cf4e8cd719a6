package dashboard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

// TestDashboardCanaryLog: in headless Chromium against a devstack with
// one real runner, quarantined as a black hole whose pool has a canary:
// the runner runs the canary, which fails after much output; the
// machine's page shows the canary's result and the end of its log as
// text (its markup-like lines are not markup), scrolled to its last line,
// and the quarantine links to it; the why page, asked about the canary's
// task id, says it is a canary and links to the machine's canary.
func TestDashboardCanaryLog(t *testing.T) {
	e := browsertest.Start(t, browsertest.Options{Runners: 1})
	m := e.Runners[0].MachineID
	ctx := context.Background()
	script := `i=0; while [ $i -lt 2500 ]; do i=$((i+1)); echo "probe step $i: <ok> & fine"; done; echo "nvidia-smi: <GPU not found>"; exit 1`
	canary, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 600})
	pool, err := e.Admin.GetPool(ctx, e.PoolID)
	if err != nil {
		t.Fatal(err)
	}
	pool.Spec.BlackHole = &client.BlackHolePolicy{QuarantineFor: "24h", Canary: canary}
	if _, err := e.Admin.PutPool(ctx, e.PoolID, pool.Spec); err != nil {
		t.Fatal(err)
	}
	// The detector's quarantine, ending soon: its canary is sent at the
	// next pass, and its failure renews the quarantine.
	prov := e.System.Provisioner
	if _, err := e.Admin.Quarantine(ctx, m, "black hole: 9 of its last 10 runs failed", time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err := e.Admin.GetMachine(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Store().SaveWatch(ctx, provisioner.Watch{MachineID: m, AutoUntil: d.QuarantinedUntil}); err != nil {
		t.Fatal(err)
	}
	var task string
	e.WaitFor("the canary to fail and the quarantine to be renewed", func() bool {
		if err := prov.DetectOnce(ctx); err != nil {
			t.Logf("detector: %v", err)
		}
		d, err := e.Admin.GetMachine(ctx, m)
		if err != nil || d.LastCanary == nil || !strings.HasPrefix(d.QuarantineReason, "black hole: canary failed") {
			return false
		}
		task = d.LastCanary.TaskID
		return true
	})

	br := e.Browser(t)
	br.Login(e.ReadOnlyToken, "", "")
	br.Navigate("/dashboard/machines/" + m)
	if result := br.Text(`table.canary`); !strings.Contains(result, task) || !strings.Contains(result, "failed, exit code 1") {
		t.Errorf("the canary's table says %q, want task %s, failed, exit code 1", result, task)
	}
	log := br.Text(`.canary-log pre`)
	for _, w := range []string{"[labrunner] … earlier output left out", "probe step 2500: <ok> & fine\nnvidia-smi: <GPU not found>\n", "Result: failed"} {
		if !strings.Contains(log, w) {
			t.Errorf("the log shown lacks %q", w)
		}
	}
	if br.Count(`.canary-log pre *`) != 0 {
		t.Error("the log shown holds elements: its text was taken as markup")
	}
	// The box shows the log's end without scrolling: its bottom is the
	// log's bottom, and the log is longer than the box.
	atEnd := browsertest.Get(br, chromedp.Evaluate[bool](`(() => {
		const box = document.querySelector('.canary-log'), pre = box.querySelector('pre');
		return box.scrollHeight > box.clientHeight + 100 && Math.abs(pre.getBoundingClientRect().bottom - box.getBoundingClientRect().bottom) < 20;
	})()`))
	if !atEnd {
		t.Error("the log's box does not open on its last lines")
	}
	if br.Count(`tr.quarantine a[href="#canary"]`) != 1 {
		t.Error("the quarantine does not link to the canary")
	}
	br.Screenshot("dashboard-canary")

	br.Navigate("/dashboard/why?q=" + task)
	if summary := br.Text(`p.summary`); !strings.Contains(summary, "is a black-hole canary") || !strings.Contains(summary, "machine "+m) {
		t.Errorf("why page summary %q", summary)
	}
	if br.Count(`table.runs a[href="/dashboard/machines/`+m+`#canary"]`) != 1 {
		t.Error("the why page does not link to the machine's canary")
	}
}
