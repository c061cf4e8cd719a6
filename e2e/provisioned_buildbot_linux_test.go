//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge"
	"github.com/labrunner/labrunner/internal/testrunner"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

const provAdminToken = "e2e-provisioner-admin-token-0123456789"

// holdBuilders has a builder whose build runs until the test creates the
// file "release-build" in the scratch directory, and one that echoes.
func holdBuilders(dir string) map[string]bridge.BuilderDef {
	script := fmt.Sprintf(`while [ ! -e %q ]; do sleep 0.05; done; echo released`, filepath.Join(dir, "release-build"))
	return map[string]bridge.BuilderDef{
		"linux-hold": {Steps: []bridge.StepDef{{Name: "hold", Command: []string{"sh", "-c", script}}}, MaxRunTime: 120},
		"linux-echo": {Steps: []bridge.StepDef{{Name: "echo", Command: []string{"sh", "-c", "echo hello"}}}, MaxRunTime: 60},
	}
}

// bridgeDemand counts the bridge's pending build requests for the
// provisioner's Buildbot pools, as devstack does.
type bridgeDemand struct{ b *bridge.Bridge }

func (d bridgeDemand) PendingRequests(ctx context.Context, builders []string) (int64, error) {
	pending, err := d.b.SchedulerDB().PendingByBuilder(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range builders {
		n += int64(pending[b])
	}
	return n, nil
}

// startProvisioner runs a provisioner (on PostgreSQL with the real
// services, else SQLite) handing out the devstack's root URL and
// credentials, with Buildbot demand from the bridge.
func (e *graphEnv) startProvisioner(s setup) (string, *client.Client) {
	e.t.Helper()
	creds := e.stack.Credentials
	db := filepath.Join(e.t.TempDir(), "prov.db")
	if s.real {
		db = testsvc.Postgres(e.t)
	}
	srv, err := provisioner.New(provisioner.Config{
		DB: db, AdminTokens: []string{provAdminToken},
		RootURL: e.stack.RootURL, DefaultCredentials: &creds, BuildbotDemand: bridgeDemand{e.bridge},
		AssignInterval: 100 * time.Millisecond, CancelPollInterval: -1, Logger: e.log.With("component", "provisioner"),
	})
	if err != nil {
		e.t.Fatalf("provisioner.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done; hs.Close(); _ = srv.Close() })
	return hs.URL, client.New(hs.URL, provAdminToken, client.WithOperator("e2e"))
}

// startProvisionedRunner runs a runner whose configuration names only the
// provisioner and the bridge: the pool, its source and builders, the
// worker names and credentials come from the assignment.
func (e *graphEnv) startProvisionedRunner(provURL, enrollToken string) *runner.Client {
	e.t.Helper()
	return testrunner.Start(e.t, testrunner.Machine{Name: "provisioned", Dir: e.dir,
		Runner: map[string]any{
			"buildbot":    map[string]any{"bridgeURL": e.bridgeURL, "logUploadURL": e.logs.srv.URL + "/logs"},
			"provisioner": testrunner.Provisioner(e.t, provURL, enrollToken, 100*time.Millisecond),
		},
		Options: runner.Options{Logger: e.log.With("component", "runner")}})
}

// moveBound bounds a move of an idle machine and one build in its new
// pool: well under the bridge's 20 s claim long poll, which a move no
// longer waits out, generous for a loaded machine under -race.
const moveBound = 10 * time.Second

// TestProvisionedRunnerRunsBuildbotBuilds: a runner registered with the
// provisioner and assigned to a Buildbot pool (or a pool of source both)
// claims a bridge-routed build; while it runs, the provisioner's machine
// shows kind buildbot with the builder and build number, and the build
// completes. In the pool of source both the runner then runs a native
// task, shown as kind taskcluster; moved to a Buildbot pool of other
// builders, it runs their builds within moveBound. Every setup (SQLite and
// the in-process bus, MariaDB and RabbitMQ) runs both sources and the move.
func TestProvisionedRunnerRunsBuildbotBuilds(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		for _, source := range []string{client.SourceBuildbot, client.SourceBoth} {
			t.Run(source, func(t *testing.T) { provisionedBuilds(t, s, source) })
		}
	})
}

// provisionedBuilds is one setup and pool source of
// TestProvisionedRunnerRunsBuildbotBuilds.
func provisionedBuilds(t *testing.T, s setup, source string) {
	e := newBareEnv(t, s, holdBuilders)
	provURL, admin := e.startProvisioner(s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec := client.PoolSpec{Source: source, Builders: []string{"linux-hold"}, MinCapacity: 1, MaxCapacity: 1}
	if source == client.SourceBoth {
		spec.TaskQueueID = e.nativeQ
	}
	if _, err := admin.PutPool(ctx, "lab", spec); err != nil {
		t.Fatal(err)
	}

	// The pending build request is the pool's demand.
	a := e.createBridged("linux-hold")
	waitFor(t, "the build request to count as the pool's demand", func() bool {
		sz, err := admin.Sizing(ctx, "lab")
		return err == nil && sz.Pending == 1
	})

	tok, err := admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	rc := e.startProvisionedRunner(provURL, tok.Token)
	var machineID string
	waitFor(t, "the runner to register into the pool", func() bool {
		s, err := rc.Status(ctx)
		if err != nil || s.Provisioner == nil || s.Provisioner.PoolID != "lab" {
			return false
		}
		machineID = s.Provisioner.MachineID
		return true
	})

	var cur *client.TaskRef
	waitFor(t, "the provisioner to show the running build", func() bool {
		m, err := admin.GetMachine(ctx, machineID)
		if err != nil || m.CurrentTask == nil {
			return false
		}
		cur = m.CurrentTask
		return true
	})
	if want := (client.TaskRef{TaskID: a, Kind: client.KindBuildbot, Builder: "linux-hold", BuildNumber: 0}); *cur != want {
		t.Fatalf("machine's current task %+v, want %+v", *cur, want)
	}
	if d := cur.Describe(); d != "buildbot linux-hold #0" {
		t.Errorf("Describe = %q", d)
	}
	if s, err := rc.Status(ctx); err != nil || !strings.Contains(runnerSummary(s), "("+source+": linux-hold)") {
		t.Errorf("runner status provisioner line %q, %v; want the pool's source and builders", runnerSummary(s), err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "release-build"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.waitState(a, "completed")
	waitFor(t, "the provisioner to show the machine idle", func() bool {
		m, err := admin.GetMachine(ctx, machineID)
		return err == nil && m.CurrentTask == nil && m.State == client.StateIdle
	})
	if source != client.SourceBoth {
		// Moved to a pool of other builders, the runner claims those. The
		// move abandons the claim long-polling the bridge (20 s) rather
		// than wait it out: the drain, the reassignment and the new
		// builders' build take a few seconds.
		if _, err := admin.PutPool(ctx, "echo", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-echo"}, MaxCapacity: 1}); err != nil {
			t.Fatal(err)
		}
		moved := time.Now()
		if _, err := admin.Assign(ctx, machineID, "echo", "other builders"); err != nil {
			t.Fatal(err)
		}
		e.waitState(e.createBridged("linux-echo"), "completed")
		took := time.Since(moved)
		t.Logf("moved and ran the new builders' build in %s", took)
		if took > moveBound {
			t.Errorf("the move and the new builders' build took %s, want within %s (under the bridge's 20 s claim long poll)", took, moveBound)
		}
		return
	}

	release := filepath.Join(e.dir, "release-native")
	n := e.create(e.nativeQ, map[string]any{"command": [][]string{{"sh", "-c", fmt.Sprintf(`while [ ! -e %q ]; do sleep 0.05; done`, release)}}, "maxRunTime": 60}, nil)
	waitFor(t, "the provisioner to show the running task", func() bool {
		m, err := admin.GetMachine(ctx, machineID)
		if err != nil || m.CurrentTask == nil {
			return false
		}
		cur = m.CurrentTask
		return true
	})
	if want := (client.TaskRef{TaskID: n, Kind: client.KindTaskcluster}); *cur != want {
		t.Fatalf("machine's current task %+v, want %+v", *cur, want)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState(n, "completed"); st.Runs[0].WorkerID != machineID {
		t.Errorf("native task ran on %q, want %q", st.Runs[0].WorkerID, machineID)
	}
}

// runnerSummary is the provisioner line of `runner status`.
func runnerSummary(s *runner.Status) string {
	if s == nil || s.Provisioner == nil {
		return ""
	}
	return s.Provisioner.Summary(time.Now())
}
