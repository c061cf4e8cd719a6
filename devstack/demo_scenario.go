package devstack

// The demo's scenario, act by act; each act waits for what it expects and
// records it as an outcome (reporter.expect). A wait that times out ends
// the scenario with that outcome failed.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// Kinds of task in the summary.
const (
	kindBuild  = client.KindBuildbot
	kindNative = client.KindTaskcluster
)

// waitLimit bounds each wait of the scenario: far above what each step
// takes, so that only a real failure reaches it.
const waitLimit = 30 * time.Second

// scenario plays the demo on a started devstack.
type scenario struct {
	d     *Demo
	rep   *reporter
	short bool
	log   *slog.Logger
	q     *tcqueue.Queue
	admin *client.Client
	tasks []*DemoTask
}

// run plays the acts in order, stopping at the first that fails.
func (sc *scenario) run(ctx context.Context) error {
	s := sc.d.System
	sc.q = tcqueue.New(&s.Credentials, s.RootURL)
	sc.q.Context = ctx
	sc.admin = client.New(s.RootURL, s.AdminToken, client.WithOperator("demo"))
	for _, act := range []func(context.Context) error{sc.setUp, sc.mixedGraph, sc.failingCheck, sc.rebootAfterTasks, sc.moveOnDemand, sc.settle} {
		if err := act(ctx); err != nil {
			return err
		}
	}
	return nil
}

// setUp applies the pools and enrolls the three machines.
func (sc *scenario) setUp(ctx context.Context) error {
	sc.rep.step("applying the pools %s (Buildbot) and %s (Taskcluster)", BuildsPool, TestsPool)
	pools := []struct {
		id   string
		spec client.PoolSpec
	}{
		{BuildsPool, client.PoolSpec{Description: "Buildbot builds of " + demoBuilder + ", routed by the bridge", Source: client.SourceBuildbot,
			Builders: []string{demoBuilder}, MinCapacity: 1, MaxCapacity: 1, Priority: 1}},
		{TestsPool, client.PoolSpec{Description: "native Taskcluster test tasks", Source: client.SourceTaskcluster,
			TaskQueueID: TaskQueueID, MinCapacity: 2, MaxCapacity: 3}},
	}
	for _, p := range pools {
		if _, err := sc.admin.PutPool(ctx, p.id, p.spec); err != nil {
			return fmt.Errorf("apply pool %s: %w", p.id, err)
		}
	}
	ro, err := sc.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenReadOnly, Description: "the demo's read-only login"})
	if err != nil {
		return fmt.Errorf("create the read-only token: %w", err)
	}
	sc.d.ReadOnlyToken = ro.Token
	enroll, err := sc.admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 3, ExpiresIn: "1h", Description: "the demo's three lab machines"})
	if err != nil {
		return fmt.Errorf("create the enrollment token: %w", err)
	}
	facts, err := baseFacts(ctx)
	if err != nil {
		return err
	}
	sc.d.MachineIDs = map[string]string{}
	// One at a time, so that each pool's minimum is filled in order:
	// lab-1 for the builds (the higher priority), lab-2 and lab-3 for
	// the tests. lab-1 reboots after every third task.
	for _, ms := range []machineSettings{{name: "lab-1", rebootAfterTasks: rebootAfter}, {name: "lab-2"}, {name: "lab-3"}} {
		sc.rep.step("enrolling %s with the enrollment token", ms.name)
		m, err := newDemoMachine(sc.d.WorkDir, ms, sc.d.System.RootURL, enroll.Token, facts, sc.log)
		if err != nil {
			return err
		}
		sc.d.Machines = append(sc.d.Machines, m)
		m.start()
		if err := sc.waitFor(ctx, ms.name+" registers", func() (bool, error) {
			st, ok := m.liveStatus()
			if !ok || st.Provisioner == nil || st.Provisioner.MachineID == "" {
				return false, m.failure()
			}
			sc.d.MachineIDs[m.Name] = st.Provisioner.MachineID
			return true, nil
		}); err != nil {
			return err
		}
	}
	sc.rep.step("waiting for every machine's boot checks")
	if err := sc.waitFor(ctx, "every machine idle after its boot checks", func() (bool, error) {
		for _, m := range sc.d.Machines {
			if st, ok := m.liveStatus(); !ok || st.State != runner.PhaseIdle {
				return false, m.failure()
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	want := map[string]string{"lab-1": BuildsPool, "lab-2": TestsPool, "lab-3": TestsPool}
	var got []string
	ok := true
	for _, m := range sc.d.Machines {
		pm, err := sc.admin.GetMachine(ctx, sc.d.MachineIDs[m.Name])
		if err != nil {
			return fmt.Errorf("provisioner machine %s: %w", m.Name, err)
		}
		got = append(got, m.Name+" → "+pm.PoolID)
		ok = ok && pm.PoolID == want[m.Name]
	}
	sc.rep.expect(ok, "3 machines enrolled with one enrollment token, each pool's minimum filled", strings.Join(got, ", "))
	return nil
}

// mixedGraph submits a bridge-routed build feeding native tests, and a
// long task that is cancelled while it runs.
func (sc *scenario) mixedGraph(ctx context.Context) error {
	suites := []string{"unit", "integration"}
	if sc.short {
		suites = suites[:1]
	}
	sc.rep.step("submitting the graph: build → %d test tasks, and a long soak test", len(suites))
	build, err := sc.submitBuild(ctx, "build")
	if err != nil {
		return err
	}
	var tests []*DemoTask
	for _, suite := range suites {
		t, err := sc.submit(ctx, "test-"+suite, testPayload(suite), "completed", build.TaskID)
		if err != nil {
			return err
		}
		tests = append(tests, t)
	}
	soak, err := sc.submit(ctx, "soak (cancelled)", longPayload(), "exception/canceled")
	if err != nil {
		return err
	}
	sc.rep.step("waiting for the soak test to run")
	var runner string
	if err := sc.waitFor(ctx, "the soak test runs on a machine", func() (bool, error) {
		runner = sc.runningOn(soak.TaskID)
		return runner != "", nil
	}); err != nil {
		return err
	}
	sc.rep.step("cancelling the soak test running on %s", runner)
	cancelled := time.Now()
	if _, err := sc.q.CancelTask(soak.TaskID); err != nil {
		return fmt.Errorf("cancelTask %s: %w", soak.TaskID, err)
	}
	if err := sc.waitFor(ctx, "the cancelled soak test stops on "+runner, func() (bool, error) {
		return sc.runningOn(soak.TaskID) == "", nil
	}); err != nil {
		return err
	}
	sc.rep.expect(true, "the soak test, cancelled while running on "+runner+", stopped there", fmt.Sprintf("in %.1f s", time.Since(cancelled).Seconds()))

	sc.rep.step("build %s running through the bridge", build.TaskID)
	if err := sc.waitResolved(ctx, append([]*DemoTask{build}, tests...)...); err != nil {
		return err
	}
	bst, err := sc.q.Status(build.TaskID)
	if err != nil {
		return fmt.Errorf("status of the build: %w", err)
	}
	buildEnd := time.Time(bst.Status.Runs[len(bst.Status.Runs)-1].Resolved)
	machine, _ := sc.ranOn(build.TaskID)
	sc.rep.expect(machine == "lab-1", "the build ran on the Buildbot pool's machine (lab-1) through the bridge", "on "+or(machine, "no machine"))
	for _, t := range tests {
		ts, err := sc.q.Status(t.TaskID)
		if err != nil {
			return fmt.Errorf("status of %s: %w", t.Name, err)
		}
		first := ts.Status.Runs[0]
		on, _ := sc.ranOn(t.TaskID)
		after := !time.Time(first.Scheduled).Before(buildEnd)
		sc.rep.expect(after && (on == "lab-2" || on == "lab-3"), t.Name+" was scheduled once the build completed, and ran in "+TestsPool, "on "+or(on, "no machine"))
	}
	return nil
}

// failingCheck submits a task that leaves a stale lock behind: the
// machine's checks directory fails on it, which quarantines the machine
// with the check's output; removing the lock releases it.
func (sc *scenario) failingCheck(ctx context.Context) error {
	sc.rep.step("submitting a task that leaves a stale lock on its machine")
	t, err := sc.submit(ctx, "leaves a stale lock", breakingPayload(), "completed")
	if err != nil {
		return err
	}
	if err := sc.waitResolved(ctx, t); err != nil {
		return err
	}
	name, _ := sc.ranOn(t.TaskID)
	m := sc.machine(name)
	if m == nil {
		return sc.fail("the stale-lock task ran on a demo machine", "it ran on "+or(name, "no machine"))
	}
	sc.rep.step("%s runs its checks directory after the task", m.Name)
	var q runner.Quarantine
	if err := sc.waitFor(ctx, m.Name+" quarantined by its failing check", func() (bool, error) {
		st, ok := m.liveStatus()
		if !ok || st.Quarantine == nil {
			return false, m.failure()
		}
		q = *st.Quarantine
		return true, nil
	}); err != nil {
		return err
	}
	sc.rep.expect(q.Source == runner.SourceCheck && strings.Contains(q.Reason, "stale.lock"), m.Name+" quarantined by its failing check", firstLine(q.Reason))
	var seen string
	if err := sc.waitFor(ctx, "the provisioner shows "+m.Name+"'s quarantine", func() (bool, error) {
		pm, err := sc.admin.GetMachine(ctx, sc.d.MachineIDs[m.Name])
		if err != nil {
			return false, nil
		}
		for _, h := range pm.Health {
			if h.Name == "quarantine" && !h.OK {
				seen = h.Message
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	sc.rep.expect(strings.Contains(seen, "stale.lock"), "the provisioner shows "+m.Name+"'s quarantine and its reason", "")

	sc.rep.step("repairing %s: removing the stale lock", m.Name)
	repaired := time.Now()
	if err := os.Remove(staleLockPath(m.Dir)); err != nil {
		return fmt.Errorf("repair %s: %w", m.Name, err)
	}
	if err := sc.waitFor(ctx, m.Name+" released once its check passes", func() (bool, error) {
		st, ok := m.liveStatus()
		return ok && st.Quarantine == nil && st.State == runner.PhaseIdle, m.failure()
	}); err != nil {
		return err
	}
	sc.rep.expect(true, m.Name+" released once its check passed", fmt.Sprintf("%.1f s after the repair", time.Since(repaired).Seconds()))
	return nil
}

// rebootAfter is lab-1's reboot.afterTasks.
const rebootAfter = 3

// rebootAfterTasks gives lab-1 three more builds: its reboot policy
// (reboot.afterTasks 3) reboots it after the second, and it comes back
// for the third.
func (sc *scenario) rebootAfterTasks(ctx context.Context) error {
	lab1 := sc.d.Machines[0]
	before := lab1.Reboots()
	sc.rep.step("three more builds: lab-1 reboots after its third task since boot")
	var builds []*DemoTask
	for _, name := range []string{"build-2", "build-3", "build-4"} {
		b, err := sc.submitBuild(ctx, name)
		if err != nil {
			return err
		}
		builds = append(builds, b)
	}
	if err := sc.waitFor(ctx, "lab-1 reboots", func() (bool, error) {
		return lab1.Reboots() > before, lab1.failure()
	}); err != nil {
		return err
	}
	sc.rep.step("lab-1 rebooted; waiting for it to come back")
	var last string
	if err := sc.waitFor(ctx, "lab-1 back after its reboot", func() (bool, error) {
		st, ok := lab1.liveStatus()
		if !ok || st.Reboot.Last == nil {
			return false, lab1.failure()
		}
		last = st.Reboot.Last.Reason
		return true, nil
	}); err != nil {
		return err
	}
	sc.rep.expect(strings.Contains(last, fmt.Sprintf("reboot.afterTasks %d", rebootAfter)), fmt.Sprintf("lab-1 rebooted after %d tasks by its reboot policy", rebootAfter), last)
	if err := sc.waitResolved(ctx, builds...); err != nil {
		return err
	}
	// The bridge hands out the three builds in its own order: whichever
	// came last ran after the reboot.
	var after []string
	for _, b := range builds {
		if on, rec := sc.ranOn(b.TaskID); on == lab1.Name && rec.Started.After(lab1.bootTime()) {
			after = append(after, b.Name)
		}
	}
	sc.rep.expect(len(after) == 1, "lab-1 came back and took work", strings.Join(after, ", ")+" ran on lab-1 after the reboot")
	return nil
}

// settle waits for every machine to be idle, so that the status printed
// at the end is a machine at rest.
func (sc *scenario) settle(ctx context.Context) error {
	sc.rep.step("waiting for every machine to be idle")
	return sc.waitFor(ctx, "every machine idle at the end", func() (bool, error) {
		for _, m := range sc.d.Machines {
			if st, ok := m.liveStatus(); !ok || st.State != runner.PhaseIdle {
				return false, m.failure()
			}
		}
		return true, nil
	})
}

// moveOnDemand lets the Buildbot pool shrink and creates a backlog of
// tests: the provisioner moves lab-1 into the tests pool, where it takes
// one.
func (sc *scenario) moveOnDemand(ctx context.Context) error {
	sc.rep.step("%s may now shrink to 0; 3 tests wait for a signal", BuildsPool)
	p, err := sc.admin.GetPool(ctx, BuildsPool)
	if err != nil {
		return fmt.Errorf("pool %s: %w", BuildsPool, err)
	}
	spec := p.Spec
	spec.MinCapacity = 0
	if _, err := sc.admin.PutPool(ctx, BuildsPool, spec); err != nil {
		return fmt.Errorf("apply pool %s: %w", BuildsPool, err)
	}
	release := filepath.Join(sc.d.WorkDir, "release")
	var holds []*DemoTask
	for i := 1; i <= 3; i++ {
		t, err := sc.submit(ctx, fmt.Sprintf("backlog-%d", i), holdPayload(release), "completed")
		if err != nil {
			return err
		}
		holds = append(holds, t)
	}
	lab1 := sc.d.Machines[0]
	sc.rep.step("waiting for the provisioner to move lab-1 to %s", TestsPool)
	if err := sc.waitFor(ctx, "the provisioner moves lab-1 to "+TestsPool, func() (bool, error) {
		pm, err := sc.admin.GetMachine(ctx, sc.d.MachineIDs[lab1.Name])
		return err == nil && pm.PoolID == TestsPool, nil
	}); err != nil {
		return err
	}
	sc.rep.step("lab-1 is in %s; waiting for it to take a test", TestsPool)
	if err := sc.waitFor(ctx, "lab-1 takes a test task in "+TestsPool, func() (bool, error) {
		for _, t := range holds {
			if sc.runningOn(t.TaskID) == lab1.Name {
				return true, nil
			}
		}
		return false, lab1.failure()
	}); err != nil {
		return err
	}
	sc.rep.expect(true, "the backlog made the provisioner move lab-1 from "+BuildsPool+" to "+TestsPool+", where it took a test", "")
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		return fmt.Errorf("release the backlog: %w", err)
	}
	sc.rep.step("released the backlog")
	return sc.waitResolved(ctx, holds...)
}
