//go:build linux

package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

// TestProvisionedRunnerStopsWhenRefused: a refused enrollment token stops
// the runner with the provisioner's message instead of retrying forever.
func TestProvisionedRunnerStopsWhenRefused(t *testing.T) {
	e := newProvEnv(t, nil)
	e.rc.Provisioner.EnrollmentToken = "lr-enroll-not-a-real-token"
	r, err := New(e.ac, e.rc, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "register with the provisioner") || !strings.Contains(err.Error(), "enrollment token") {
			t.Fatalf("Run = %v, want the refused registration", err)
		}
	case <-time.After(linkWait):
		t.Fatal("the runner kept running with a refused enrollment token")
	}
}

// TestProvisionerConfigMakesStaticKeysOptional: with runner.provisioner.url
// the root URL, credentials, task queue and worker names may be missing;
// without it they are still required, and bad ones are named either way.
func TestProvisionerConfigMakesStaticKeysOptional(t *testing.T) {
	base := "stateDir: /tmp/lr-state\ntasksDir: /tmp/lr-tasks\n"
	ac, rc, err := Parse([]byte(base + "runner:\n  provisioner:\n    url: https://prov.example.com\n    enrollmentToken: lr-enroll-x\n"))
	if err != nil {
		t.Fatalf("provisioner-only configuration: %v", err)
	}
	if !rc.Provisioner.Enabled() || ac.RootURL != "" || ac.TaskQueueID != "" {
		t.Fatalf("parsed %+v / %+v", ac, rc.Provisioner)
	}
	_, _, err = Parse([]byte(base))
	for _, key := range []string{"rootURL: missing", "credentials.clientId: missing", "taskQueueId: missing", "workerGroup:", "workerId:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("static configuration without %q: %v", key, err)
		}
	}
	_, _, err = Parse([]byte(base + "rootURL: tc.example.com\ntaskQueueId: nope\nrunner:\n  provisioner:\n    url: prov.example.com\n"))
	for _, want := range []string{"rootURL: \"tc.example.com\" is not an absolute", "taskQueueId: \"nope\"", "runner.provisioner.url \"prov.example.com\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad keys with a provisioner: want %q in %v", want, err)
		}
	}
}

// TestProvisionedRunnerRebootDirective: a reboot directive waits for the
// running task (heartbeat "draining"), then reboots with the provisioner
// named as the reason.
func TestProvisionedRunnerRebootDirective(t *testing.T) {
	e := newProvEnv(t, nil)
	rn, id := e.startLinked()
	started, release := filepath.Join(e.dir, "started"), filepath.Join(e.dir, "release")
	task := e.createTask(fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", started, release))
	waitUntil(t, "the task started", func() bool { _, err := os.Stat(started); return err == nil }, nil)
	if _, err := e.prov.admin.Reboot(e.prov.ctx(), id, "kernel update"); err != nil {
		t.Fatal(err)
	}
	s := e.waitStatus(rn, "the reboot pending", func(s *Status) bool { return s.Reboot.Pending != nil })
	if !strings.Contains(s.Reboot.Pending.Reason, "provisioner") || !strings.Contains(s.Reboot.Pending.Reason, "kernel update") || len(s.CurrentTasks) != 1 {
		t.Fatalf("pending reboot %+v with tasks %+v", s.Reboot.Pending, s.CurrentTasks)
	}
	linkEventually(t, "the registry to show draining", func() bool { return e.prov.machine(id).State == client.StateDraining })
	if got := e.reboots(); len(got) != 0 {
		t.Fatalf("rebooted during the task: %v", got)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.waitResolved(task); got != "completed" {
		t.Fatalf("task resolved %s, want completed", got)
	}
	if got := e.waitReboots(1); !strings.Contains(got[0], "kernel update") {
		t.Fatalf("reboot reason %q", got[0])
	}
}

// TestProvisionedRunnerBuildbotPool: moved to a Buildbot pool (builders,
// no task queue) the runner counts as assigned and claims from the bridge
// only, so a task of its former queue stays pending; moved back, it claims
// that task. (e2e/provisioned_buildbot_linux_test.go runs builds.)
func TestProvisionedRunnerBuildbotPool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noBridge := "http://" + ln.Addr().String()
	ln.Close()
	e := newProvEnv(t, map[string]any{"runner": map[string]any{"buildbot": map[string]any{"bridgeURL": noBridge}}})
	rn, id := e.startLinked()
	ctx := e.prov.ctx()
	if _, err := e.prov.admin.PutPool(ctx, "bb", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep"}, MinCapacity: 1, MaxCapacity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.prov.admin.Assign(ctx, id, "bb", "Buildbot work"); err != nil {
		t.Fatal(err)
	}
	s := e.waitStatus(rn, "the runner in the Buildbot pool", func(s *Status) bool {
		return s.Provisioner.PoolID == "bb" && !s.Draining && s.State == PhaseIdle
	})
	if s.Machine.TaskQueueID != "" || s.Provisioner.Source != SourceBuildbot || !slices.Equal(s.Provisioner.Builders, []string{"linux-sleep"}) {
		t.Fatalf("status in the Buildbot pool: machine %+v, provisioner %+v", s.Machine, s.Provisioner)
	}
	if sum := s.Provisioner.Summary(time.Now()); !strings.Contains(sum, "pool bb (buildbot: linux-sleep)") {
		t.Fatalf("provisioner line %q, want the pool's source and builders", sum)
	}
	waitUntil(t, "the claim gate open in the Buildbot pool", func() bool {
		rn.r.mu.Lock()
		defer rn.r.mu.Unlock()
		return rn.r.assigned() && rn.r.claimable()
	}, nil)

	stale := e.createTask("echo waited")
	before := e.prov.machine(id).Counters["tasksTotal"]
	for range 3 {
		last := e.prov.machine(id).LastHeartbeat
		linkEventually(t, "another heartbeat", func() bool {
			m := e.prov.machine(id)
			return m.LastHeartbeat != nil && (last == nil || m.LastHeartbeat.After(*last))
		})
	}
	if st := e.taskState(stale); st != "pending" {
		t.Fatalf("a task of the former queue was %s while the runner served the Buildbot pool, want pending", st)
	}
	if m := e.prov.machine(id); m.Counters["tasksTotal"] != before || m.CurrentTask != nil {
		t.Fatalf("machine ran something in the Buildbot pool: %+v", m.Machine)
	}

	if _, err := e.prov.admin.Assign(ctx, id, "hello", "back"); err != nil {
		t.Fatal(err)
	}
	if got := e.waitResolved(stale); got != "completed" {
		t.Fatalf("task resolved %s after the move back, want completed", got)
	}
	s = e.waitStatus(rn, "the runner back in the Taskcluster pool", func(s *Status) bool { return s.Provisioner.PoolID == "hello" })
	if s.Machine.TaskQueueID != e.taskQueue || s.Provisioner.Source != SourceTaskcluster {
		t.Fatalf("status back in hello: machine %+v, provisioner %+v", s.Machine, s.Provisioner)
	}
}

// TestHeartbeatTaskRef: the heartbeat names a run's kind and, for a
// Buildbot build, its builder and number; the runner's pool sources are
// the provisioner's.
func TestHeartbeatTaskRef(t *testing.T) {
	for _, p := range [][2]string{{SourceTaskcluster, client.SourceTaskcluster}, {SourceBuildbot, client.SourceBuildbot}, {SourceBoth, client.SourceBoth},
		{SourceTaskcluster, client.KindTaskcluster}, {SourceBuildbot, client.KindBuildbot}} {
		if p[0] != p[1] {
			t.Fatalf("the runner's source %q is the provisioner's %q", p[0], p[1])
		}
	}
	bb := taskRef(CurrentTask{TaskID: "T1", Kind: SourceBuildbot, Buildbot: &agent.BuildInfo{Builder: "linux-sleep", BuildNumber: 3, BuildRequestID: 9}})
	if *bb != (client.TaskRef{TaskID: "T1", Kind: client.KindBuildbot, Builder: "linux-sleep", BuildNumber: 3}) {
		t.Fatalf("build ref %+v", *bb)
	}
	for _, ct := range []CurrentTask{{TaskID: "T2", RunID: 1, Kind: SourceTaskcluster}, {TaskID: "T2", RunID: 1}} {
		if ref := taskRef(ct); *ref != (client.TaskRef{TaskID: "T2", RunID: 1}) {
			t.Fatalf("task ref of %+v = %+v", ct, *ref)
		}
	}
}
