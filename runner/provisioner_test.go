//go:build linux

package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
)

// provEnv is a runner whose configuration names only a provisioner (a real
// one, SQLite behind httptest) that hands out the devstack queue's pool
// and credentials.
type provEnv struct {
	*testEnv
	prov *linkEnv
}

// uniqueQueue is a task queue id no other test uses.
func uniqueQueue(prefix string) string {
	wt := prefix + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(wt) > 38 {
		wt = wt[:38]
	}
	return "lab/" + wt
}

// newProvEnv starts a devstack and a provisioner with pool "hello" and
// writes a configuration without rootURL, credentials, task queue or
// worker names: just the provisioner's URL and an enrollment token.
func newProvEnv(t *testing.T, agentKeys map[string]any) *provEnv {
	t.Helper()
	return newProvEnvWith(t, agentKeys, nil)
}

// newProvEnvWith is newProvEnv with the provisioner's config adjusted by
// mod.
func newProvEnvWith(t *testing.T, agentKeys map[string]any, mod func(*provisioner.Config)) *provEnv {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Options{
		Queue:  devqueue.Config{PollWait: 300 * time.Millisecond},
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	prov := newLinkEnv(t, func(c *provisioner.Config) {
		c.RootURL = s.RootURL
		c.DefaultCredentials = &s.Credentials
		c.CancelPollInterval = 50 * time.Millisecond
		c.AssignInterval = 50 * time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	prov.run()
	e := &testEnv{t: t, stack: s, taskQueue: uniqueQueue("hello-")}
	prov.pool("hello", e.taskQueue)
	e.dir = testTempDir(t)
	e.rebootLog = filepath.Join(e.dir, "reboots.log")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noIMDS := "http://" + ln.Addr().String()
	ln.Close()
	cfg := map[string]any{
		"stateDir":     filepath.Join(e.dir, "state"),
		"tasksDir":     filepath.Join(e.dir, "tasks"),
		"idlePollWait": "10ms",
		"killGrace":    "500ms",
		// About the provisioner link, not task users.
		"taskUser": "service",
		"runner": map[string]any{
			"reboot":   map[string]any{"command": []string{"/bin/sh", "-c", `echo "$LABRUNNER_REBOOT_REASON" >> ` + e.rebootLog}},
			"checks":   map[string]any{"diskFreeMinMB": 1, "memFreeMinMB": 1},
			"watchdog": map[string]any{"timeout": "0s"},
			"provisioner": map[string]any{
				"url": prov.url, "enrollmentToken": prov.enrollToken(1),
				"heartbeatInterval": "100ms", "pollWait": "2s", "imdsEndpoint": noIMDS,
			},
		},
	}
	merge(cfg, agentKeys)
	b, _ := json.Marshal(cfg) // JSON is YAML
	e.configPath = filepath.Join(e.dir, "runner.yml")
	if err := os.WriteFile(e.configPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.ac, e.rc, err = Load(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	creds := s.Credentials
	e.queue = tcqueue.New(&creds, s.RootURL)
	return &provEnv{testEnv: e, prov: prov}
}

// createTaskIn submits a task running sh -c script to a task queue.
func (e *provEnv) createTaskIn(queue, script string) string {
	e.t.Helper()
	id := slugid.Nice()
	now := time.Now().UTC()
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 600})
	if _, err := e.queue.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: queue,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  payload,
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "t", Owner: "t@example.com", Source: "https://example.com"},
	}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// startLinked starts the runner and waits until it is registered and
// connected; it returns the machine id.
func (e *provEnv) startLinked() (*running, string) {
	e.t.Helper()
	rn := e.start(Options{})
	s := e.waitStatus(rn, "registered and connected", func(s *Status) bool {
		return s.Provisioner != nil && s.Provisioner.Registered && s.Provisioner.Connected && s.Provisioner.PoolID == "hello"
	})
	return rn, s.Provisioner.MachineID
}

// TestProvisionedRunnerRunsTasks: with only a provisioner URL and an
// enrollment token, the runner registers, takes the pool, root URL,
// worker names and credentials from its assignment, claims and completes
// a task; its heartbeats reach the registry; status shows the connection.
func TestProvisionedRunnerRunsTasks(t *testing.T) {
	e := newProvEnv(t, nil)
	if e.ac.RootURL != "" || e.ac.Credentials.ClientID != "" || e.ac.TaskQueueID != "" {
		t.Fatalf("the configuration has static settings: %+v", e.ac)
	}
	rn, id := e.startLinked()
	id1 := e.createTask("echo provisioned")
	if got := e.waitResolved(id1); got != "completed" {
		t.Fatalf("task resolved %s, want completed", got)
	}
	st, err := e.queue.Status(id1)
	if err != nil {
		t.Fatal(err)
	}
	if run := st.Status.Runs[0]; run.WorkerID != id || run.WorkerGroup == "" {
		t.Fatalf("run claimed by %s/%s, want the assigned worker id %s", run.WorkerGroup, run.WorkerID, id)
	}
	s := e.waitStatus(rn, "the task recorded", func(s *Status) bool { return s.Counters.TasksTotal == 1 && s.State == PhaseIdle })
	if s.Machine.TaskQueueID != e.taskQueue || s.Machine.WorkerID != id {
		t.Fatalf("status machine %+v, want the assignment's queue and worker id", s.Machine)
	}
	linkEventually(t, "the heartbeat with the finished task's counters", func() bool {
		m := e.prov.machine(id)
		return m.State == client.StateIdle && m.Counters["tasksTotal"] == 1 && m.CurrentTask == nil
	})

	var human bytes.Buffer
	if err := FormatStatus(&human, s); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("connected to %s as %s, pool hello", e.prov.url, id)
	if line := lineWith(human.String(), "provisioner"); !strings.Contains(line, want) {
		t.Fatalf("runner status provisioner line %q, want it to contain %q\n%s", line, want, human.String())
	}
	raw, _ := json.Marshal(s)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if p, ok := doc["provisioner"].(map[string]any); !ok || p["machineId"] != id || p["poolId"] != "hello" || p["registered"] != true {
		t.Fatalf("status --json provisioner = %v", doc["provisioner"])
	}
}

// lineWith is the first line of text starting with prefix.
func lineWith(text, prefix string) string {
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestProvisionedRunnerMovesPools: an operator's assign drains the runner;
// it reports drained at once (the heartbeat interval is an hour, so only
// the heartbeat sent on the change of state can bring the move), the
// provisioner reassigns it, the drain ends and the agent claims from the
// new pool's queue with its credentials.
func TestProvisionedRunnerMovesPools(t *testing.T) {
	e := newProvEnv(t, map[string]any{"runner": map[string]any{"provisioner": map[string]any{"heartbeatInterval": "1h"}}})
	rn, id := e.startLinked()
	other := uniqueQueue("other-")
	e.prov.pool("other", other)
	first := e.createTask("echo first")
	if got := e.waitResolved(first); got != "completed" {
		t.Fatalf("task in the first pool resolved %s", got)
	}

	if _, err := e.prov.admin.Assign(e.prov.ctx(), id, "other", "rebalance"); err != nil {
		t.Fatal(err)
	}
	linkEventually(t, "the registry to show the move", func() bool {
		m := e.prov.machine(id)
		return m.PoolID == "other" && m.MovingTo == ""
	})
	s := e.waitStatus(rn, "the runner on the new pool", func(s *Status) bool {
		return s.Machine.TaskQueueID == other && !s.Draining && s.Provisioner.PoolID == "other"
	})
	if s.State == PhaseDraining || s.State == PhaseDrained || s.DrainReason != "" {
		t.Fatalf("still draining after the move: %+v", s)
	}
	var actions []string
	for _, a := range e.prov.machine(id).Actions {
		actions = append(actions, a.Action)
	}
	moved := e.createTaskIn(other, "echo moved")
	var res string
	waitUntil(t, "the task in the new pool resolved", func() bool {
		st, err := e.queue.Status(moved)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Status.Runs; len(r) > 0 && r[0].State != "pending" && r[0].State != "running" {
			res = r[0].State + " by " + r[0].WorkerID
			return true
		}
		return false
	}, func() string { return fmt.Sprintf("actions %v", actions) })
	if res != "completed by "+id {
		t.Fatalf("task in the new pool: %s, want completed by %s", res, id)
	}
	// The old pool is no longer served.
	stale := e.createTask("echo stale")
	e.waitStatus(rn, "another heartbeat round", func(s *Status) bool { return s.Counters.TasksTotal == 2 })
	linkEventually(t, "more heartbeats", func() bool {
		m := e.prov.machine(id)
		return m.Counters["tasksTotal"] == 2
	})
	if st := e.taskState(stale); st != "pending" {
		t.Fatalf("a task of the old pool was %s, want pending", st)
	}
}

// TestProvisionedRunnerCancelTask: a task cancelled in the queue is killed
// (its TERM-proof grandchild too) through the provisioner's cancel-task
// directive, with the agent's own cancellation poll an hour away.
func TestProvisionedRunnerCancelTask(t *testing.T) {
	e := newProvEnv(t, map[string]any{"cancelPollInterval": "1h"})
	rn, id := e.startLinked()
	pidFile := filepath.Join(e.dir, "grandchild")
	task := e.createTask(fmt.Sprintf(`/bin/sh -c 'trap "" TERM; sleep 300 & echo $! > %s; wait' ; sleep 300`, pidFile))
	pid := readPidFile(t, pidFile)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	linkEventually(t, "the registry to show the running task", func() bool {
		m := e.prov.machine(id)
		return m.State == client.StateBusy && m.CurrentTask != nil && m.CurrentTask.TaskID == task
	})
	if _, err := e.queue.CancelTask(task); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the grandchild gone after the cancel", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) }, nil)
	s := e.waitStatus(rn, "the run recorded", func(s *Status) bool { return len(s.RecentTasks) == 1 && len(s.CurrentTasks) == 0 })
	if r := s.RecentTasks[0]; r.TaskID != task || r.Resolution != "cancelled or claim lost" {
		t.Fatalf("recent task %+v, want the cancelled run", r)
	}
	if got := e.waitResolved(task); got != "exception/canceled" {
		t.Fatalf("task resolved %s, want exception/canceled", got)
	}
}

// readPidFile waits for a pid written by a task.
func readPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitUntil(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, nil)
	return pid
}

// TestProvisionedRunnerQuarantine: a quarantine directive stops claiming
// and shows in `runner status --json` with source provisioner; the
// unquarantine directive lifts it. The runner's own quarantine and drain
// reach the registry through heartbeats.
func TestProvisionedRunnerQuarantine(t *testing.T) {
	e := newProvEnv(t, map[string]any{"runner": map[string]any{"checks": map[string]any{"interval": "1s"}}})
	rn, id := e.startLinked()
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := e.prov.admin.Quarantine(e.prov.ctx(), id, "flaky USB", until); err != nil {
		t.Fatal(err)
	}
	s := e.waitNoClaim(rn, "the provisioner's quarantine", func(s *Status) bool {
		return s.Quarantine != nil && s.State == PhaseQuarantined
	})
	raw, _ := json.Marshal(s)
	var doc struct {
		State      string `json:"state"`
		Quarantine struct {
			Source string     `json:"source"`
			Reason string     `json:"reason"`
			Until  *time.Time `json:"until"`
		} `json:"quarantine"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if q := doc.Quarantine; doc.State != "quarantined" || q.Source != SourceProvisioner || !strings.Contains(q.Reason, "flaky USB") || q.Until == nil || !q.Until.Equal(until) {
		t.Fatalf("status --json: %s", raw)
	}

	held := e.createTask("echo held")
	moreRunnerTicks(t, e, rn, 3)
	if st := e.taskState(held); st != "pending" {
		t.Fatalf("a quarantined runner claimed a task: %s", st)
	}

	if _, err := e.prov.admin.Unquarantine(e.prov.ctx(), id, "fixed"); err != nil {
		t.Fatal(err)
	}
	if got := e.waitResolved(held); got != "completed" {
		t.Fatalf("task after unquarantine resolved %s", got)
	}
	e.waitStatus(rn, "quarantine lifted", func(s *Status) bool { return s.Quarantine == nil })

	// The runner's own quarantine and drain reach the registry.
	if err := rn.r.Quarantine("disk is dying", 0); err != nil {
		t.Fatal(err)
	}
	linkEventually(t, "the runner's quarantine in the heartbeat", func() bool {
		return slices.ContainsFunc(e.prov.machine(id).Health, func(h client.HealthResult) bool {
			return h.Name == "quarantine" && !h.OK && strings.Contains(h.Message, "disk is dying")
		})
	})
	rn.r.Unquarantine()
	rn.r.Drain()
	linkEventually(t, "drained in the registry", func() bool { return e.prov.machine(id).State == client.StateDrained })
}

// waitStatusOnce reads the live status once.
func (e *testEnv) waitStatusOnce(rn *running) *Status {
	e.t.Helper()
	s, err := rn.client.Status(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// moreRunnerTicks waits until the runner's built-in checks ran n more
// times (each round opens and closes the claim gate's decision).
func moreRunnerTicks(t *testing.T, e *provEnv, rn *running, n int) {
	t.Helper()
	checkedAt := func() time.Time {
		var last time.Time
		for _, c := range e.waitStatusOnce(rn).Checks {
			if c.CheckedAt.After(last) {
				last = c.CheckedAt
			}
		}
		return last
	}
	for range n {
		before := checkedAt()
		waitUntil(t, "a round of checks", func() bool { return checkedAt().After(before) }, nil)
	}
}
