package devstack

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// TestDemoPlaysTheScenario runs the demo (the smaller graph with -short)
// and keeps it running, then checks each outcome against the system
// itself rather than the demo's own account of it: the queue's task
// states, the provisioner's machines and pools, the machines' runner
// status and reboot logs, and the dashboard's logins.
func TestDemoPlaysTheScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	d, err := RunDemo(ctx, &out, DemoOptions{WorkDir: testsvc.TempDir(t, "labrunner-demo-"), Short: testing.Short(), Keep: true})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	defer d.Close()
	t.Logf("demo output:\n%s", out.String())
	t.Logf("scenario took %s", d.Elapsed)
	text := out.String()

	// Every outcome was expected, and they are all there.
	wantOutcomes := []string{
		"3 machines enrolled with one enrollment token",
		"the soak test, cancelled while running on",
		"the build ran on the Buildbot pool's machine (lab-1) through the bridge",
		"test-unit was scheduled once the build completed",
		"quarantined by its failing check",
		"the provisioner shows",
		"released once its check passed",
		"lab-1 rebooted after 3 tasks by its reboot policy",
		"lab-1 came back and took work",
		"the backlog made the provisioner move lab-1 from demo-builds to demo-tests",
	}
	if !testing.Short() {
		wantOutcomes = append(wantOutcomes, "test-integration was scheduled once the build completed")
	}
	for _, want := range wantOutcomes {
		i := slices.IndexFunc(d.Outcomes, func(o DemoOutcome) bool { return strings.Contains(o.What, want) })
		switch {
		case i < 0:
			t.Errorf("no outcome %q in %+v", want, d.Outcomes)
		case !d.Outcomes[i].OK:
			t.Errorf("outcome %q not met: %s", want, d.Outcomes[i].Detail)
		}
	}
	if i := slices.IndexFunc(d.Outcomes, func(o DemoOutcome) bool { return strings.Contains(o.What, "quarantined by its failing check") }); i >= 0 &&
		(!strings.HasPrefix(d.Outcomes[i].Detail, "check 50-stale-lock") || !strings.Contains(d.Outcomes[i].Detail, "stale.lock: left by task ")) {
		t.Errorf("quarantine reason %q; want the check's output", d.Outcomes[i].Detail)
	}
	if len(d.Outcomes) != len(wantOutcomes) {
		t.Errorf("%d outcomes, want %d: %+v", len(d.Outcomes), len(wantOutcomes), d.Outcomes)
	}

	// The queue agrees with the table, task by task.
	q := tcqueue.New(&d.System.Credentials, d.System.RootURL)
	wantTasks := 11
	if testing.Short() {
		wantTasks = 10
	}
	if len(d.Tasks) != wantTasks {
		t.Errorf("%d tasks, want %d", len(d.Tasks), wantTasks)
	}
	for _, task := range d.Tasks {
		st, err := q.Status(task.TaskID)
		if err != nil {
			t.Fatalf("status of %s: %v", task.Name, err)
		}
		runs := st.Status.Runs
		got := st.Status.State
		if got == "exception" {
			got += "/" + runs[len(runs)-1].ReasonResolved
		}
		if got != task.Expected || task.Result != got {
			t.Errorf("task %s: queue says %s, table %s, expected %s", task.Name, got, task.Result, task.Expected)
		}
		if task.Machine == "" {
			t.Errorf("task %s: no machine recorded it", task.Name)
		}
		if task.Kind == kindBuild && task.Machine != "lab-1" {
			t.Errorf("build %s ran on %s, want lab-1 (the Buildbot pool's machine)", task.Name, task.Machine)
		}
	}
	if !strings.Contains(text, "exception/canceled") {
		t.Errorf("the table shows no cancelled task:\n%s", text)
	}

	// The provisioner: three machines from one enrollment token, lab-1
	// moved to the tests pool, nobody quarantined at the end.
	admin := client.New(d.System.RootURL, d.AdminToken)
	machines, err := admin.ListMachines(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]string{}
	for _, m := range machines {
		pools[m.Facts.Hostname] = m.PoolID
	}
	if want := map[string]string{"lab-1": TestsPool, "lab-2": TestsPool, "lab-3": TestsPool}; len(machines) != 3 || !maps.Equal(pools, want) {
		t.Errorf("provisioner machines %v, want %v", pools, want)
	}
	detail, err := admin.GetMachine(ctx, d.MachineIDs["lab-1"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(detail.Actions, func(a client.Action) bool {
		return a.Action == "assign" && a.Why == `from "`+BuildsPool+`" to "`+TestsPool+`"`
	}) {
		t.Errorf("lab-1's actions record no move from %s to %s: %+v", BuildsPool, TestsPool, detail.Actions)
	}

	// The machines: lab-1 went through one reboot (its harmless reboot
	// command logged the reason), the quarantined machine is released.
	for _, m := range d.Machines {
		st, err := m.Status(ctx)
		if err != nil {
			t.Fatalf("runner status of %s: %v", m.Name, err)
		}
		if st.State != runner.PhaseIdle || st.Quarantine != nil || st.TaskUser != "service" {
			t.Errorf("%s: state %s, quarantine %+v, task user %q; want idle, none, service", m.Name, st.State, st.Quarantine, st.TaskUser)
		}
		reboots, _ := os.ReadFile(filepath.Join(m.Dir, "reboots.log"))
		wantReboots := 0
		if m.Name == "lab-1" {
			wantReboots = 1
		}
		if m.Reboots() != wantReboots || strings.Count(string(reboots), "reboot.afterTasks") != wantReboots {
			t.Errorf("%s: %d reboots, reboot log %q; want %d", m.Name, m.Reboots(), reboots, wantReboots)
		}
	}
	for _, want := range []string{"$ runner status --config ", "last reboot  3 tasks since boot (reboot.afterTasks 3)", "pool demo-tests", "0 unexpected; total "} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}

	// Kept running: the dashboard answers the admin and read-only logins
	// printed, and refuses others.
	for _, tc := range []struct {
		pass string
		code int
	}{{d.AdminToken, http.StatusOK}, {d.ReadOnlyToken, http.StatusOK}, {"wrong", http.StatusUnauthorized}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.DashboardURL, nil)
		req.SetBasicAuth("someone", tc.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("dashboard with password %.8s…: HTTP %d, want %d", tc.pass, resp.StatusCode, tc.code)
		}
	}
	for _, want := range []string{d.DashboardURL, d.AdminToken, d.ReadOnlyToken} {
		if !strings.Contains(text, want) {
			t.Errorf("the kept demo does not print %q", want)
		}
	}
}
