package provisioner

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner/client"
)

func linuxFacts(host string) client.Facts {
	return client.Facts{Hostname: host, OS: "linux", OSVersion: "6.8", Arch: "amd64", Model: "NUC12", CPUs: 8, MemoryMB: 16384, Serial: "SN-" + host}
}

func bbRef(taskID, builder string, n int) *client.TaskRef {
	return &client.TaskRef{TaskID: taskID, Kind: client.KindBuildbot, Builder: builder, BuildNumber: n}
}

// TestStoreHeartbeatKindOfWork: the store keeps a run's kind and Buildbot
// build; a retried build of the same task is a new run; a runner that
// sends no kind runs Taskcluster tasks.
func TestStoreHeartbeatKindOfWork(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		m := &MachineRecord{Machine: client.Machine{MachineID: "lx-1", PoolID: "bb", Facts: linuxFacts("lx-1"), Registered: now}, TokenHash: hashToken("tok-lx-1")}
		if err := s.InsertMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		current := func() *client.TaskRef {
			t.Helper()
			got, err := s.GetMachine(ctx, "lx-1")
			if err != nil {
				t.Fatal(err)
			}
			return got.CurrentTask
		}
		beat := func(at time.Duration, ref *client.TaskRef) {
			t.Helper()
			state := client.StateBusy
			if ref == nil {
				state = client.StateIdle
			}
			if err := s.Heartbeat(ctx, "lx-1", client.HeartbeatRequest{State: state, CurrentTask: ref}, now.Add(at)); err != nil {
				t.Fatal(err)
			}
		}
		beat(0, bbRef("T1", "linux-sleep", 3))
		beat(10*time.Second, bbRef("T1", "linux-sleep", 3))
		if got := current(); got == nil || *got != *bbRef("T1", "linux-sleep", 3) {
			t.Fatalf("current task %+v, want buildbot linux-sleep #3 of T1", got)
		}
		// RETRY: the same task and run in a new build.
		beat(30*time.Second, bbRef("T1", "linux-sleep", 4))
		if got := current(); got == nil || got.BuildNumber != 4 {
			t.Fatalf("current task %+v, want build #4", got)
		}
		// An old runner: no kind.
		beat(50*time.Second, &client.TaskRef{TaskID: "T2", RunID: 1})
		if got := current(); got == nil || *got != (client.TaskRef{TaskID: "T2", RunID: 1, Kind: client.KindTaskcluster}) {
			t.Fatalf("current task %+v, want taskcluster T2/1", got)
		}
		beat(60*time.Second, nil)
		if got := current(); got != nil {
			t.Fatalf("current task %+v after idle", got)
		}
		runs, err := s.TaskRuns(ctx, "bb", now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var spans []time.Duration
		for _, r := range runs {
			spans = append(spans, r.Finished.Sub(r.Started))
		}
		if len(runs) != 3 || spans[0] != 30*time.Second || spans[1] != 20*time.Second || spans[2] != 10*time.Second {
			t.Fatalf("task runs %+v (%v); want builds #3 (30 s) and #4 (20 s), then T2 (10 s)", runs, spans)
		}
	})
}

// TestMigrationKeepsRunningTasksTaskcluster: a machine running a task when
// 0002 is applied reads back as running a Taskcluster task.
func TestMigrationKeepsRunningTasksTaskcluster(t *testing.T) {
	for _, k := range []struct {
		name, driver string
		d            dialect
	}{{"sqlite", "sqlite", sqliteDialect}, {"postgres", "pgx", postgresDialect}} {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			var url string
			for _, sk := range storeKinds {
				if sk.name == k.name {
					url = sk.url(t)
				}
			}
			db, err := sql.Open(k.driver, url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ms, err := loadMigrations(k.d.name)
			if err != nil || len(ms) < 2 || ms[0].version != 1 {
				t.Fatalf("migrations %v, %v", ms, err)
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := applyMigrations(ctx, conn, k.d, ms[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, k.d.rebind(`INSERT INTO machines (machine_id, token_hash, facts, state, current_task_id, current_run_id, task_started, registered)
				VALUES (?, ?, '{}', 'busy', 'T9', 2, 1, 1)`), "old-1", hashToken("tok-old-1")); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			s := openTestStore(t, url)
			got, err := s.GetMachine(ctx, "old-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.CurrentTask == nil || *got.CurrentTask != (client.TaskRef{TaskID: "T9", RunID: 2, Kind: client.KindTaskcluster}) {
				t.Fatalf("current task after migration %+v", got.CurrentTask)
			}
			// The same run reported by an old runner keeps its start.
			if err := s.Heartbeat(ctx, "old-1", client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "T9", RunID: 2}}, time.UnixMilli(5)); err != nil {
				t.Fatal(err)
			}
			if again, _ := s.GetMachine(ctx, "old-1"); again.TaskStarted == nil || again.TaskStarted.UnixMilli() != 1 {
				t.Fatalf("task start after a repeated heartbeat %v, want 1 ms (the same run)", again.TaskStarted)
			}
		})
	}
}

// TestMachinesShowKindOfWork: heartbeats carry the kind of work and the
// Buildbot build, and GET /machines and /machines/{id} return them; bad
// fields are named.
func TestMachinesShowKindOfWork(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t, k.url(t), nil)
			ctx := e.ctx()
			e.pool("bb", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep"}, MaxCapacity: 2})
			reg, mc := e.enroll(linuxFacts("lx-1"))
			id := reg.MachineID
			if _, err := mc.Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: bbRef("T1", "linux-sleep", 3)}); err != nil {
				t.Fatal(err)
			}
			m, err := e.admin.GetMachine(ctx, id)
			if err != nil || m.CurrentTask == nil || *m.CurrentTask != *bbRef("T1", "linux-sleep", 3) {
				t.Fatalf("machine %+v, %v; want buildbot linux-sleep #3", m, err)
			}
			if d := m.CurrentTask.Describe(); d != "buildbot linux-sleep #3" {
				t.Fatalf("Describe = %q", d)
			}
			list, err := e.admin.ListMachines(ctx, "")
			if err != nil || len(list) != 1 || list[0].CurrentTask == nil || list[0].CurrentTask.Builder != "linux-sleep" || list[0].CurrentTask.BuildNumber != 3 {
				t.Fatalf("machine list %+v, %v", list, err)
			}
			// The wire form.
			for _, path := range []string{"/api/v1/machines/" + id, "/api/v1/machines"} {
				body := e.get(path)
				if !strings.Contains(body, `"currentTask":{"taskId":"T1","runId":0,"kind":"buildbot","builder":"linux-sleep","buildNumber":3}`) {
					t.Fatalf("GET %s = %s", path, body)
				}
			}
			// An old runner's heartbeat: a Taskcluster task.
			if status, ce := e.raw("POST", "/api/v1/machines/"+id+"/heartbeat", reg.MachineToken, `{"state":"busy","currentTask":{"taskId":"T2","runId":1}}`); status != http.StatusOK {
				t.Fatalf("old heartbeat: %d %+v", status, ce)
			}
			m, err = e.admin.GetMachine(ctx, id)
			if err != nil || m.CurrentTask == nil || *m.CurrentTask != (client.TaskRef{TaskID: "T2", RunID: 1, Kind: client.KindTaskcluster}) || m.CurrentTask.Describe() != "task T2/1" {
				t.Fatalf("machine after an old heartbeat %+v, %v", m.CurrentTask, err)
			}
			for _, c := range []struct{ body, field string }{
				{`{"state":"busy","currentTask":{"taskId":"T","runId":0,"kind":"jenkins"}}`, "currentTask.kind"},
				{`{"state":"busy","currentTask":{"taskId":"T","runId":0,"kind":"buildbot","buildNumber":1}}`, "currentTask.builder"},
				{`{"state":"busy","currentTask":{"taskId":"T","runId":0,"kind":"buildbot","builder":"b","buildNumber":-1}}`, "currentTask.buildNumber"},
				{`{"state":"busy","currentTask":{"taskId":"T","runId":0,"builder":"b"}}`, "currentTask.kind"},
			} {
				if status, ce := e.raw("POST", "/api/v1/machines/"+id+"/heartbeat", reg.MachineToken, c.body); status != http.StatusBadRequest || ce.Field != c.field || ce.Message == "" {
					t.Errorf("%s: %d %+v, want 400 naming %s", c.body, status, ce, c.field)
				}
			}
		})
	}
}

// get returns the body of an admin GET.
func (e *env) get(path string) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestBothPoolAssignment: a pool of source both hands out its task queue,
// builders and Taskcluster credentials; a buildbot pool only its builders.
func TestBothPoolAssignment(t *testing.T) {
	perm := tcclient.Credentials{ClientID: "project/labrunner/provisioner", AccessToken: "permanent-access-token-0123456789abcdef0123"}
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t, k.url(t), func(c *Config) {
				c.DefaultCredentials = &perm
				c.RootURL = "https://tc.example.com"
			})
			mixed := client.PoolSpec{Source: client.SourceBoth, TaskQueueID: "proj/mixed", Builders: []string{"linux-sleep", "linux-build"}, MinCapacity: 1, MaxCapacity: 2,
				Constraints: client.Constraints{OS: []string{"windows"}}}
			e.pool("mixed", mixed)
			e.pool("bb", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep"}, MinCapacity: 1, MaxCapacity: 2, Constraints: client.Constraints{OS: []string{"linux"}}})
			p, err := e.admin.GetPool(e.ctx(), "mixed")
			if err != nil || p.Spec.Source != client.SourceBoth || p.Spec.TaskQueueID != "proj/mixed" || len(p.Spec.Builders) != 2 {
				t.Fatalf("stored pool %+v, %v", p, err)
			}
			reg, _ := e.enroll(winFacts("w1"))
			a := reg.Assignment
			if a.PoolID != "mixed" || a.Source != client.SourceBoth || a.TaskQueueID != "proj/mixed" || strings.Join(a.Builders, ",") != "linux-sleep,linux-build" || a.Credentials == nil {
				t.Fatalf("assignment to a both pool %+v", a)
			}
			reg, _ = e.enroll(linuxFacts("lx-1"))
			a = reg.Assignment
			if a.PoolID != "bb" || a.Source != client.SourceBuildbot || a.TaskQueueID != "" || strings.Join(a.Builders, ",") != "linux-sleep" || a.Credentials != nil {
				t.Fatalf("assignment to a buildbot pool %+v", a)
			}
		})
	}
}

// TestBothPoolDemandCountsBothKinds: sizing of a both pool counts the
// queue's pending tasks and the bridge's pending build requests.
func TestBothPoolDemandCountsBothKinds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, stack := newDevQueueEnv(ctx, t, func(c *Config, s *devstack.Stack) {
		c.Demand = nil
		c.BuildbotDemand = buildbotCounts{"linux-sleep": 2, "linux-build": 3}
	})
	e.pool("mixed", client.PoolSpec{Source: client.SourceBoth, TaskQueueID: devTaskQueue, Builders: []string{"linux-sleep", "linux-build"}, MaxCapacity: 4})
	e.pool("bb", client.PoolSpec{Source: client.SourceBuildbot, Builders: []string{"linux-sleep"}, MaxCapacity: 4})
	if _, err := createDevTask(ctx, stack); err != nil {
		t.Fatal(err)
	}
	for pool, want := range map[string]int64{"mixed": 1 + 2 + 3, "bb": 2} {
		sz, err := e.admin.Sizing(ctx, pool)
		if err != nil || sz.Pending != want {
			t.Fatalf("sizing of %s: %+v, %v; want %d pending", pool, sz, err, want)
		}
	}
	// The bridge failing fails the whole count rather than halving it.
	d := &sourceDemand{tc: newTaskcluster(Config{RootURL: stack.RootURL, DefaultCredentials: &stack.Credentials}), buildbot: buildbotCounts{}}
	if _, err := d.Pending(ctx, client.Pool{PoolID: "mixed", Spec: client.PoolSpec{Source: client.SourceBoth, TaskQueueID: devTaskQueue, Builders: []string{"gone"}}}); err == nil {
		t.Fatal("a both pool's count hid the bridge's error")
	}
}

// TestCancellationPollSkipsBuildbotBuilds: without Pulse, the poll asks
// the queue only about Taskcluster runs; a Buildbot build (whose bridge
// stops it) gets no cancel-task directive, even for a canceled task.
func TestCancellationPollSkipsBuildbotBuilds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, stack := newDevQueueEnv(ctx, t, func(c *Config, s *devstack.Stack) {
		c.CancelPollInterval = 100 * time.Millisecond
		c.AssignInterval = 100 * time.Millisecond
		c.Demand = nil
		c.BuildbotDemand = buildbotCounts{"linux-build": 0}
	})
	e.run()
	eventually(t, "the replica to lead", e.srv.Leading)
	e.pool("mixed", client.PoolSpec{Source: client.SourceBoth, TaskQueueID: devTaskQueue, Builders: []string{"linux-build"}, MinCapacity: 1, MaxCapacity: 1})
	reg, mc := e.enroll(macFacts("mini-10"))
	if reg.Assignment.PoolID != "mixed" {
		t.Fatalf("assignment %+v", reg.Assignment)
	}
	taskID, err := createDevTask(ctx, stack)
	if err != nil {
		t.Fatal(err)
	}
	root := tcqueue.New(&stack.Credentials, stack.RootURL)
	root.Context = ctx
	if _, err := root.CancelTask(taskID); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: bbRef(taskID, "linux-build", 1)}); err != nil {
		t.Fatal(err)
	}
	polls := e.srv.cancelPolls.Load()
	eventually(t, "three more polls", func() bool { return e.srv.cancelPolls.Load() >= polls+3 })
	if ds, err := mc.Directives(ctx, reg.MachineID, 0, 0); err != nil || len(ds) != 0 {
		t.Fatalf("directives for a Buildbot build %+v, %v; want none", ds, err)
	}
	// The same task reported as a Taskcluster run is cancelled.
	if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: taskID}}); err != nil {
		t.Fatal(err)
	}
	var got []client.Directive
	for ctx.Err() == nil && len(got) == 0 {
		if got, err = mc.Directives(ctx, reg.MachineID, 0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].Kind != client.DirectiveCancelTask || got[0].Task.TaskID != taskID {
		t.Fatalf("directives %+v; want cancel-task for %s", got, taskID)
	}
}
