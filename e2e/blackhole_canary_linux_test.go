//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// TestBlackHoleCanary: three runners serve a pool whose black holes run a
// canary when their quarantine ends. The machine whose directory holds a
// marker file fails its tasks and is quarantined; its canaries (the same
// marker test, run by the real runner while quarantined) fail and renew
// the quarantine; once the marker is gone the next canary passes, the
// provisioner releases the machine and it claims again.
func TestBlackHoleCanary(t *testing.T) {
	log := testLogger(t)
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: log,
		Queue: devqueue.Config{ResolverInterval: 50 * time.Millisecond, DeadlineDelay: -1, PollWait: 300 * time.Millisecond}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	creds := stack.Credentials
	srv, err := provisioner.New(provisioner.Config{
		DB: filepath.Join(t.TempDir(), "prov.db"), AdminTokens: []string{provAdminToken},
		RootURL: stack.RootURL, DefaultCredentials: &creds, DetectInterval: 100 * time.Millisecond,
		AssignInterval: 100 * time.Millisecond, CancelPollInterval: -1, Logger: log.With("component", "provisioner"),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; hs.Close(); _ = srv.Close() })
	admin := client.New(hs.URL, provAdminToken, client.WithOperator("e2e"))

	taskQueue := "canary-" + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(taskQueue) > 38 {
		taskQueue = taskQueue[:38]
	}
	taskQueue = "lab/" + taskQueue
	// Tasks and canaries fail on the machine whose directory holds "broken".
	script := `d=$(dirname "$(dirname "$TASK_WORKDIR")"); if [ -e "$d/broken" ]; then echo "broken machine"; exit 1; fi; sleep 0.3`
	canary, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 60})
	// A short quarantine: the canary is due at once, and again after each failure.
	if _, err := admin.PutPool(context.Background(), "bh", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: taskQueue,
		MinCapacity: 3, MaxCapacity: 3, BlackHole: &client.BlackHolePolicy{MaxQuarantinedShare: 0.34, QuarantineFor: "5s", Canary: canary}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(context.Background(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	status := map[string]func() *runner.Status{}
	for _, name := range []string{"bh-0", "bh-1", "bh-2"} {
		status[name] = startPoolRunner(t, filepath.Join(base, name), name, hs.URL, tok.Token, log.With("component", name))
	}
	marker := filepath.Join(base, "bh-0", "broken")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	q := tcqueue.New(&creds, stack.RootURL)
	for range 30 {
		now := time.Now().UTC()
		payload, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 120})
		if _, err := q.CreateTask(slugid.Nice(), &tcqueue.TaskDefinitionRequest{TaskQueueID: taskQueue,
			Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
			Payload:  payload,
			Metadata: tcqueue.TaskMetadata{Name: "bh", Description: "bh", Owner: "t@example.com", Source: "https://example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	canaries := func(result string) []provisioner.RunRecord {
		runs, err := srv.Store().RunReports(context.Background(), "bh", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(runs, func(r provisioner.RunRecord) bool { return r.Kind != client.KindCanary || r.Result != result })
	}
	// Quarantined, then two canaries fail: the quarantine holds.
	waitFor(t, "two failed canaries of bh-0", func() bool { return len(canaries(client.ResultFailed)) >= 2 })
	for _, r := range canaries(client.ResultFailed) {
		if r.MachineID != "bh-0" || r.ExitCode == nil || *r.ExitCode != 1 {
			t.Errorf("failed canary %s on %s exit %v, want bh-0's, exit 1", r.TaskID, r.MachineID, r.ExitCode)
		}
	}
	m, err := admin.GetMachine(context.Background(), "bh-0")
	if err != nil {
		t.Fatal(err)
	}
	if m.QuarantinedUntil == nil || !m.QuarantinedUntil.After(time.Now()) {
		t.Fatalf("bh-0 not quarantined after failed canaries: %v %q", m.QuarantinedUntil, m.QuarantineReason)
	}
	if !slices.ContainsFunc(m.Actions, func(a client.Action) bool {
		return a.Action == "quarantine" && strings.Contains(a.Why, "black hole: canary failed: failed, exit code 1")
	}) {
		t.Errorf("bh-0's actions %+v lack the renewal after a failed canary", m.Actions)
	}
	st := status["bh-0"]()
	if st == nil || st.Quarantine == nil || st.Quarantine.Source != runner.SourceProvisioner {
		t.Fatalf("bh-0's runner status %+v, want the provisioner's quarantine", st)
	}
	if !slices.ContainsFunc(st.RecentTasks, func(r runner.RecentTaskStatus) bool { return r.Kind == runner.SourceCanary }) {
		t.Errorf("bh-0's recent tasks %+v show no canary", st.RecentTasks)
	}

	// Repaired: the next canary passes and the machine is released.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bh-0 released by a passing canary", func() bool {
		st = status["bh-0"]()
		return len(canaries(client.ResultCompleted)) > 0 && st != nil && st.Quarantine == nil
	})
	for _, r := range canaries(client.ResultCompleted) {
		if r.MachineID != "bh-0" {
			t.Errorf("a canary ran on %s", r.MachineID)
		}
	}
	if m, _ = admin.GetMachine(context.Background(), "bh-0"); m.QuarantinedUntil != nil {
		t.Errorf("bh-0 still quarantined in the registry: %v %q", m.QuarantinedUntil, m.QuarantineReason)
	}
	waitFor(t, "bh-0 claiming again", func() bool { st = status["bh-0"](); return st != nil && st.Polling })
	t.Logf("bh-0: %d canaries failed, then one passed", len(canaries(client.ResultFailed)))
}
