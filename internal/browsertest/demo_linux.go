package browsertest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/devstack"
	tcstack "github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// demoLimit bounds the demo's scenario under test (the demo itself aims at
// 60 s; a loaded machine under -race takes longer).
const demoLimit = 5 * time.Minute

// StartDemo plays `devstack demo`'s scenario (the short graph) and keeps
// its system running until the test ends: three real runners in a
// Buildbot pool and a Taskcluster pool, with the tasks, quarantine,
// reboot and move the scenario made. The Env's PoolID is the tests pool;
// its Runners are the demo's machines, in order. The scenario's report
// is shown when it fails.
func StartDemo(t *testing.T) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), demoLimit)
	defer cancel()
	var opts devstack.DemoOptions
	opts.Keep, opts.Short = true, true
	opts.System.Stack = tcstack.Options{Logger: Logger(t)}
	// Samples for the history pages' charts and timelines within the
	// scenario's seconds.
	opts.System.HistoryInterval = 500 * time.Millisecond
	// The report (which prints the tokens) is shown only when the
	// scenario fails.
	var report bytes.Buffer
	d, err := devstack.RunDemo(ctx, &report, opts)
	if d != nil {
		t.Cleanup(func() { _ = d.Close() })
	}
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, report.String())
	}
	sys := d.System
	e := &Env{T: t, System: sys, AdminToken: d.AdminToken, ReadOnlyToken: d.ReadOnlyToken, log: Logger(t),
		Admin:  client.New(sys.RootURL, d.AdminToken, client.WithOperator("browsertest")),
		PoolID: devstack.TestsPool, Queue: tcqueue.New(&sys.Credentials, sys.RootURL)}
	pool, err := e.Admin.GetPool(ctx, e.PoolID)
	if err != nil {
		t.Fatalf("demo pool %s: %v", e.PoolID, err)
	}
	e.TaskQueueID = pool.Spec.TaskQueueID
	for _, m := range d.Machines {
		id := d.MachineIDs[m.Name]
		if id == "" {
			t.Fatalf("demo machine %s has no machine id (ids: %v)", m.Name, d.MachineIDs)
		}
		e.Runners = append(e.Runners, &Runner{MachineID: id, Control: runner.NewClient(m.ControlSocket)})
	}
	if len(e.Runners) == 0 {
		t.Fatal("the demo has no machines")
	}
	return e
}
