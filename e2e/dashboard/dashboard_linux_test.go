package dashboard

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/labrunner/labrunner/internal/browsertest"
)

// admin is who the tests sign in as; the records name them so.
const admin = "alice"

// TestDashboardInBrowser: in headless Chromium against a devstack with two
// real runners, an admin signs in, sees the machines, quarantines one with
// the table's button (its row changes, its runner stops claiming: tasks
// all run on the other one), reads the record on the machine's page,
// releases it there, and drains the other (tasks then run on the first);
// a read-only sign-in sees no buttons and its posts get 403; forged posts
// (from another origin, without the form token) are refused.
func TestDashboardInBrowser(t *testing.T) {
	e := browsertest.Start(t, browsertest.Options{Runners: 2})
	a, b := e.Runners[0].MachineID, e.Runners[1].MachineID
	br := e.Browser(t)
	t.Run("admin acts", func(t *testing.T) { adminActs(t, e, br, a, b) })
	t.Run("read-only", func(t *testing.T) { readOnly(t, e, a) })
	t.Run("forged posts", func(t *testing.T) { forgedPosts(t, e, br, b) })
}

// row is the selector of machine id's tick box in the table; class
// narrows it to rows of that class (quarantined, offline, working).
func row(id string, class ...string) string {
	tr := "tr.machine"
	for _, c := range class {
		tr += "." + c
	}
	return fmt.Sprintf(`%s input[name=machine][value=%q]`, tr, id)
}

func adminActs(t *testing.T, e *browsertest.Env, br *browsertest.Browser, a, b string) {
	br.T = t
	br.Login(e.AdminToken, admin, "dashboard-login")
	if who := br.Text(`header.top .who`); !strings.Contains(who, admin+" via config adminTokens[0] (dashboard) · admin") {
		t.Errorf("header says %q, want alice signed in as admin", who)
	}
	for _, id := range []string{a, b} {
		if br.Count(row(id)) != 1 {
			t.Fatalf("machine %s is not in the table", id)
		}
	}
	br.ArtifactShot("machines")

	// Quarantine a through the table.
	br.Do(chromedp.Click(chromedp.CSS(row(a))),
		chromedp.SendKeys(chromedp.CSS(`#machines-form input[name=reason]`), "USB hub resets"),
		chromedp.SetValue(chromedp.CSS(`#machines-form input[name=duration]`), "2h"))
	br.Submit(`#machines-form button[value=quarantine]`)
	if f := br.Text(`p.flash`); f != "quarantine done for "+a+"." {
		t.Errorf("after the button: %q", f)
	}
	if br.Count(row(a, "quarantined")) != 1 || br.Count(row(b, "quarantined")) != 0 {
		t.Errorf("the rows do not show %s (only) quarantined", a)
	}
	br.Screenshot("dashboard-quarantined")
	ctx := context.Background()
	e.WaitFor("runner "+a+" to hear of its quarantine", func() bool {
		s, err := e.Runners[0].Control.Status(ctx)
		return err == nil && s.Quarantine != nil && strings.Contains(s.Quarantine.Reason, "USB hub resets")
	})
	// a no longer claims: three tasks at once all run on b, one after
	// the other, although a is idle.
	runAllOn(t, e, b, 3)

	// The machine page shows who did it; release a there.
	br.Navigate("/dashboard/machines/" + a)
	if rec := br.Text(`table.actions tbody tr`); !strings.Contains(rec, "quarantine") || !strings.Contains(rec, admin+" via config adminTokens[0] (dashboard)") || !strings.Contains(rec, "USB hub resets") {
		t.Errorf("the newest action on %s's page is %q, want alice's quarantine", a, rec)
	}
	br.ArtifactShot("machine")
	br.Do(chromedp.SendKeys(chromedp.CSS(`#machine-form input[name=reason]`), "hub replaced"))
	br.Submit(`#machine-form button[value=release]`)
	if f := br.Text(`p.flash`); f != "release done for "+a+"." {
		t.Errorf("after release: %q", f)
	}
	if q := br.Text(`table.summary tr.quarantine td`); q != "no" {
		t.Errorf("quarantine after release: %q", q)
	}
	e.WaitFor("runner "+a+" to hear of the release", func() bool {
		s, err := e.Runners[0].Control.Status(ctx)
		return err == nil && s.Quarantine == nil
	})

	// Drain b from the table: now everything runs on a.
	br.Navigate("/dashboard")
	br.Do(chromedp.Click(chromedp.CSS(row(b))))
	br.Submit(`#machines-form button[value=drain]`)
	if f := br.Text(`p.flash`); f != "drain done for "+b+"." {
		t.Errorf("after drain: %q", f)
	}
	runAllOn(t, e, a, 2)
	d, err := e.Admin.GetMachine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Draining || d.Actions[0].Action != "drain" || d.Actions[0].Who != admin+" via config adminTokens[0] (dashboard)" {
		t.Errorf("%s: draining %v, last action %+v; want alice's drain", b, d.Draining, d.Actions[0])
	}
}

// runAllOn submits n short tasks at once and checks that every one ran
// on machine want.
func runAllOn(t *testing.T, e *browsertest.Env, want string, n int) {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, e.SubmitTask(fmt.Sprintf("dashboard task %d", i), "sleep 0.3"))
	}
	for _, id := range ids {
		var state, worker string
		e.WaitFor("task "+id+" to complete", func() bool {
			state, worker = e.TaskRun(id)
			return state == "completed" || state == "failed" || state == "exception"
		})
		if state != "completed" || worker != want {
			t.Errorf("task %s: %s on %q, want completed on %s", id, state, worker, want)
		}
	}
}

// quarantined reports whether the provisioner holds machine id in
// quarantine.
func quarantined(t *testing.T, e *browsertest.Env, id string) bool {
	t.Helper()
	m, err := e.Admin.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.QuarantinedUntil != nil
}
