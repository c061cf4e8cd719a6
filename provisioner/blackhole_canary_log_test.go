package provisioner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestCanaryLogIsKeptAndShown, on both stores: a canary's report carries
// the tail of its log, which the machine's detail (API and dashboard)
// shows, escaped, as its latest canary. The server holds the bound
// whatever the runner sends: a log over client.MaxRunLog bytes, a log on
// a run that is not a canary, or one with U+0000 is refused naming the
// field, and nothing of the batch is stored; only the machine's own token
// reports its runs, and another machine's token cannot read them.
func TestCanaryLogIsKeptAndShown(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, k.url(t), func(c *Config) { c.ReadOnlyTokens = []string{dashReadOnly} })
			e.pool("win", tcPool("p/win", 2, 2, 0, "windows"))
			reg0, w0 := e.enroll(winFacts("w0"))
			reg1, w1 := e.enroll(winFacts("w1"))
			id0, id1 := reg0.MachineID, reg1.MachineID
			at := e.clock.Now().Add(-time.Minute)
			exit := 1
			canary := func(task, log string) client.RunReport {
				return client.RunReport{TaskID: task, Kind: client.KindCanary, Result: client.ResultFailed, ExitCode: &exit,
					Started: at, Finished: at.Add(30 * time.Second), Log: log}
			}
			stored := func() int {
				t.Helper()
				runs, err := e.srv.store.RunReports(e.ctx(), "win", time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				return len(runs)
			}

			// Refused, naming the field; the good run beside it is not stored.
			good := canary("canary-good", "ok\n")
			full := strings.Repeat("x", client.MaxRunLog-1) + "\n"
			for _, c := range []struct {
				name string
				run  client.RunReport
				msg  string
			}{
				{"too long", canary("canary-long", full+"y"), fmt.Sprintf("%d bytes; a canary's log holds at most %d", client.MaxRunLog+1, client.MaxRunLog)},
				{"not a canary", client.RunReport{TaskID: "task-a", Result: client.ResultFailed, Started: at, Finished: at, Log: "boom"}, "only a canary's report carries its log"},
				{"NUL", canary("canary-nul", "a\x00b"), "U+0000"},
			} {
				_, err := w0.ReportRuns(e.ctx(), id0, []client.RunReport{good, c.run})
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Body.Field != "runs[1].log" || !strings.Contains(ae.Body.Message, c.msg) {
					t.Errorf("%s: %v, want a 400 naming runs[1].log: %s", c.name, err, c.msg)
				}
			}
			if n := stored(); n != 0 {
				t.Fatalf("%d runs stored from refused batches, want none", n)
			}
			// Only w0's token reports w0's runs.
			if _, err := w1.ReportRuns(e.ctx(), id0, []client.RunReport{canary("canary-planted", "planted by w1")}); client.StatusOf(err) != http.StatusForbidden {
				t.Errorf("w1 reported a canary of w0: %v, want 403", err)
			}

			// At the bound exactly it is kept, byte for byte; the latest is shown.
			if res, err := w0.ReportRuns(e.ctx(), id0, []client.RunReport{canary("canary-1", full)}); err != nil || res.Accepted != 1 {
				t.Fatalf("a log of exactly %d bytes: %+v, %v", client.MaxRunLog, res, err)
			}
			hostile := "step 1 ok\n<script>alert('log')</script>\nGPU not found: exit 1\n"
			second := canary("canary-2", hostile)
			second.Started, second.Finished = at.Add(time.Minute), at.Add(90*time.Second)
			if _, err := w0.ReportRuns(e.ctx(), id0, []client.RunReport{second}); err != nil {
				t.Fatal(err)
			}
			m, err := e.admin.GetMachine(e.ctx(), id0)
			if err != nil {
				t.Fatal(err)
			}
			if c := m.LastCanary; c == nil || c.TaskID != "canary-2" || c.Log != hostile || c.Result != client.ResultFailed || c.ExitCode == nil || *c.ExitCode != 1 {
				t.Fatalf("w0's last canary %+v, want canary-2, failed, exit 1, with its log", c)
			}
			first, err := e.srv.store.LatestCanary(e.ctx(), "", "canary-1")
			if err != nil || first.Log != full || first.MachineID != id0 {
				t.Fatalf("canary-1 read back from the store: %d bytes on %q, %v; want the %d bytes sent, on %s", len(first.Log), first.MachineID, err, len(full), id0)
			}
			if m, err := e.admin.GetMachine(e.ctx(), id1); err != nil || m.LastCanary != nil {
				t.Errorf("w1, which ran no canary, shows %+v (%v)", m.LastCanary, err)
			}
			if _, err := w1.GetMachine(e.ctx(), id0); client.StatusOf(err) != http.StatusForbidden {
				t.Errorf("w1's token read w0's detail (and its canary's log): %v, want 403", err)
			}

			// The dashboard shows it as text, for read-only sign-ins too; the
			// quarantine links to it.
			if _, err := e.admin.Quarantine(e.ctx(), id0, "black hole: canary failed", e.clock.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			resp, body := (&dashEnv{env: e}).get("/dashboard/machines/"+id0, "Bearer "+dashReadOnly)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("w0's page: %d\n%s", resp.StatusCode, body)
			}
			for _, w := range []string{`<h2 id="canary">Last canary</h2>`, "<code>canary-2</code>", "failed, exit code 1",
				"&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;", "GPU not found: exit 1", `<a href="#canary">`} {
				if !strings.Contains(body, w) {
					t.Errorf("w0's page lacks %q", w)
				}
			}
			if strings.Contains(body, "<script") {
				t.Errorf("w0's page carries the log's markup unescaped:\n%s", body)
			}
		})
	}
}

// TestWhyExplainsACanary: asked about a canary's task id (copied from a
// quarantine's reason), which the queue never had, the why answer says it
// is a canary, which machine ran it and how it ended, without the
// queue's expected 404 as an error; the page links to the machine's
// canary and its log.
func TestWhyExplainsACanary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := newWhyEnv(ctx, t)
	task := slugid.Nice()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	if _, err := w.srv.store.AddRunReports(ctx, []RunRecord{{PoolID: "hello", MachineID: "w-quar", RunReport: client.RunReport{
		TaskID: task, Kind: client.KindCanary, Result: client.ResultException, Reason: "worker-shutdown",
		Started: at, Finished: at.Add(20 * time.Second), Log: "interrupted twice\n"}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	a := w.why(task)
	if a.State != "canary" || len(a.Errors) != 0 || !strings.Contains(a.Summary, "black-hole canary") || !strings.Contains(a.Summary, "machine w-quar") ||
		!strings.Contains(a.Summary, "exception worker-shutdown") {
		t.Fatalf("why a canary: state %q, summary %q, errors %v", a.State, a.Summary, a.Errors)
	}
	if len(a.Runs) != 1 || a.Runs[0].MachineID != "w-quar" || a.Runs[0].Resolved == nil || !a.Runs[0].Resolved.Equal(at.Add(20*time.Second)) {
		t.Errorf("why a canary: runs %+v, want w-quar's", a.Runs)
	}
	page := (&historyEnv{env: w.env}).page("/dashboard/why?q=" + task)
	if !strings.Contains(page, `href="/dashboard/machines/w-quar#canary"`) {
		t.Errorf("the why page does not link to w-quar's canary:\n%s", page)
	}
	if other := w.why(slugid.Nice()); other.State != "unknown" {
		t.Errorf("a task nobody knows: state %q, want unknown", other.State)
	}
}
