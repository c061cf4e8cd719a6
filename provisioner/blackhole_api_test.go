package provisioner

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestBlackHoleThroughTheAPI reports runs over HTTP (once, then again),
// lets the detector quarantine the machine whose runs fail and pass
// elsewhere, and checks what an operator and the machine see; an
// operator's release is not undone for the same runs, only for new ones.
func TestBlackHoleThroughTheAPI(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), nil)
			e.pool("win", tcPool("p/win", 4, 4, 0, "windows"))
			mcs := map[string]*client.Client{}
			for i := range 4 {
				reg, mc := e.enroll(winFacts(fmt.Sprintf("w%d", i)))
				if reg.Assignment.PoolID != "win" {
					t.Fatalf("%s assigned to %q, want win", reg.MachineID, reg.Assignment.PoolID)
				}
				mcs[reg.MachineID] = mc
			}
			base := e.clock.Now().Add(-6 * time.Hour)
			task := 0
			run := func(taskID string, runID int, result string, at time.Time) client.RunReport {
				exit := 0
				if result == client.ResultFailed {
					exit = 1
				}
				return client.RunReport{TaskID: taskID, RunID: runID, Result: result, ExitCode: &exit, Started: at, Finished: at.Add(10 * time.Minute)}
			}
			report := func(id string, runs []client.RunReport) *client.RunReportsResponse {
				t.Helper()
				res, err := mcs[id].ReportRuns(e.ctx(), id, runs)
				if err != nil {
					t.Fatalf("report runs of %s: %v", id, err)
				}
				return res
			}
			// w0 fails 8 tasks, each passing on a healthy machine next.
			badRound := func(from time.Time) {
				var bad []client.RunReport
				for i := range 8 {
					task++
					id := fmt.Sprintf("task-%03d", task)
					at := from.Add(time.Duration(i) * 15 * time.Minute)
					bad = append(bad, run(id, 0, client.ResultFailed, at))
					healthy := fmt.Sprintf("w%d", 1+i%3)
					report(healthy, []client.RunReport{run(id, 1, client.ResultCompleted, at.Add(12*time.Minute))})
				}
				if res := report("w0", bad); res.Accepted != 8 || res.Duplicates != 0 {
					t.Fatalf("first report: %+v, want 8 accepted", res)
				}
				if res := report("w0", bad); res.Accepted != 0 || res.Duplicates != 8 {
					t.Fatalf("the same report again: %+v, want 8 duplicates", res)
				}
			}
			for _, id := range []string{"w1", "w2", "w3"} {
				var ok []client.RunReport
				for i := range 10 {
					task++
					ok = append(ok, run(fmt.Sprintf("task-%03d", task), 0, client.ResultCompleted, base.Add(time.Duration(i)*15*time.Minute)))
				}
				report(id, ok)
			}
			badRound(base)
			if err := e.srv.DetectOnce(e.ctx()); err != nil {
				t.Fatal(err)
			}
			m, err := e.admin.GetMachine(e.ctx(), "w0")
			if err != nil {
				t.Fatal(err)
			}
			const want = "black hole: 8 of its last 8 runs failed; pool 0 %; 8 of them passed on another machine"
			if m.QuarantinedUntil == nil || !m.QuarantinedUntil.Equal(e.clock.Now().Add(24*time.Hour)) || !strings.HasPrefix(m.QuarantineReason, want) {
				t.Fatalf("w0: quarantined until %v for %q, want 24 h for %q…", m.QuarantinedUntil, m.QuarantineReason, want)
			}
			if len(m.Actions) == 0 || m.Actions[0].Who != detectorName || m.Actions[0].Action != "quarantine" {
				t.Errorf("w0's last action %+v, want a quarantine by the %s", m.Actions, detectorName)
			}
			ds, err := mcs["w0"].Directives(e.ctx(), "w0", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 0 || ds[len(ds)-1].Kind != client.DirectiveQuarantine || ds[len(ds)-1].Reason != m.QuarantineReason {
				t.Errorf("w0's directives %+v, want the quarantine with its reason", ds)
			}
			for _, id := range []string{"w1", "w2", "w3"} {
				if hm, _ := e.admin.GetMachine(e.ctx(), id); hm.QuarantinedUntil != nil {
					t.Errorf("healthy %s quarantined: %s", id, hm.QuarantineReason)
				}
			}
			metrics := scrape(t, e.url)
			for _, w := range []string{
				`labrunner_provisioner_blackhole_quarantines_total{pool="win"} 1`,
				`labrunner_provisioner_blackhole_quarantined{pool="win"} 1`,
				`labrunner_provisioner_run_reports_total{result="failed"} 8`,
			} {
				if !strings.Contains(metrics, w) {
					t.Errorf("metrics lack %q", w)
				}
			}

			// An operator releases it: the same runs do not quarantine it again.
			if _, err := e.admin.Unquarantine(e.ctx(), "w0", "checked it, looks fine"); err != nil {
				t.Fatal(err)
			}
			if err := e.srv.DetectOnce(e.ctx()); err != nil {
				t.Fatal(err)
			}
			if m, _ := e.admin.GetMachine(e.ctx(), "w0"); m.QuarantinedUntil != nil {
				t.Fatalf("w0 quarantined again for the runs an operator released it from: %s", m.QuarantineReason)
			}
			// New failures do.
			e.clock.Add(3 * time.Hour)
			badRound(e.clock.Now().Add(-2*time.Hour - 30*time.Minute))
			if err := e.srv.DetectOnce(e.ctx()); err != nil {
				t.Fatal(err)
			}
			if m, _ := e.admin.GetMachine(e.ctx(), "w0"); m.QuarantinedUntil == nil || !strings.Contains(m.QuarantineReason, "8 of its last 8 runs failed") {
				t.Fatalf("w0 not quarantined for 8 new failures: %+v", m.Machine)
			}
		})
	}
}

// TestRunReportsAreRefusedWhole checks the route's own validation: a bad
// run in a batch refuses the batch, naming the run and field.
func TestRunReportsAreRefusedWhole(t *testing.T) {
	e := newEnv(t, storeKinds[0].url(t), nil)
	e.pool("win", tcPool("p/win", 1, 1, 0, "windows"))
	reg, _ := e.enroll(winFacts("w0"))
	ok := `{"taskId":"T","runId":0,"result":"completed","started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:05:00Z"}`
	for _, c := range []struct{ body, field string }{
		{`{"runs":[` + ok + `,{"taskId":"U","runId":0,"result":"passed","started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:05:00Z"}]}`, "runs[1].result"},
		{`{"runs":[{"taskId":"U","runId":0,"result":"failed","started":"2026-11-26T11:00:00Z","finished":"2026-11-26T10:05:00Z"}]}`, "runs[0].finished"},
		{`{"runs":[{"taskId":"U","runId":0,"kind":"buildbot","result":"failed","started":"2026-11-26T11:00:00Z","finished":"2026-11-26T11:05:00Z"}]}`, "runs[0].builder"},
		{`{"runs":[{"taskId":"U","runId":0,"result":"failed","started":"2026-11-26T11:00:00Z"}]}`, "runs[0].finished"},
		{`{"runs":[` + strings.Repeat(ok+",", client.MaxRunReports) + ok + `]}`, "runs"},
	} {
		code, ce := e.raw("POST", "/api/v1/machines/"+reg.MachineID+"/runs", reg.MachineToken, c.body)
		if code != http.StatusBadRequest || ce.Field != c.field {
			t.Errorf("%.100s: %d %+v, want 400 naming %s", c.body, code, ce, c.field)
		}
	}
	if code, _ := e.raw("POST", "/api/v1/machines/"+reg.MachineID+"/runs", testAdminToken, `{"runs":[`+ok+`]}`); code != http.StatusForbidden {
		t.Errorf("an admin token reporting runs: %d, want 403 (only the machine reports its runs)", code)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBlackHoleSettingsAreChecked refuses settings that make no sense,
// naming the field; a 0 sent is refused, not read as the default.
func TestBlackHoleSettingsAreChecked(t *testing.T) {
	e := newEnv(t, storeKinds[0].url(t), nil)
	pool := func(bh string) string {
		return `{"source":"taskcluster","taskQueueId":"p/w","maxCapacity":5,"blackHole":` + bh + `}`
	}
	for _, c := range []struct{ bh, field string }{
		{`{"minFailureRate":0}`, "blackHole.minFailureRate"},
		{`{"significance":0.9}`, "blackHole.significance"},
		{`{"minRuns":30}`, "blackHole.minRuns"},
		{`{"recentRuns":0}`, "blackHole.recentRuns"},
		{`{"window":"1y"}`, "blackHole.window"},
		{`{"quarantineFor":""}`, "blackHole.quarantineFor"},
		{`{"maxQuarantinedShare":1.5}`, "blackHole.maxQuarantinedShare"},
		{`{"minRuns":5,"MinRuns":6}`, "blackHole.MinRuns"},
	} {
		if code, ce := e.raw("PUT", "/api/v1/pools/w", testAdminToken, pool(c.bh)); code != http.StatusBadRequest || ce.Field != c.field {
			t.Errorf("blackHole %s: %d %+v, want 400 naming %s", c.bh, code, ce, c.field)
		}
	}
	if code, ce := e.raw("PUT", "/api/v1/pools/w", testAdminToken, pool(`{"window":"12h","recentRuns":30,"minRuns":8,"significance":1e-7,"maxQuarantinedShare":0.2,"quarantineFor":"48h"}`)); code >= 300 {
		t.Errorf("valid blackHole settings: %d %+v", code, ce)
	}
}
