package provisioner

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
)

// startRun runs the server's loops and returns a function that stops them
// (as a process exit would) and waits.
func (e *env) startRun() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.srv.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	e.t.Cleanup(stop)
	return stop
}

func TestTwoReplicasOnPostgres(t *testing.T) {
	url := testsvc.Postgres(t)
	fast := func(c *Config) {
		c.AssignInterval = 100 * time.Millisecond
		c.ReplicaPoll = 100 * time.Millisecond
	}
	r1 := newEnv(t, url, fast)
	r2 := newEnv(t, url, fast)
	r2.clock = r1.clock
	r2.srv.cfg.Now = r1.clock.Now
	stop1 := r1.startRun()
	stop2 := r2.startRun()
	ctx := r1.ctx()
	eventually(t, "one replica to lead", func() bool { return r1.srv.Leading() || r2.srv.Leading() })
	// The second replica has had many attempts (every 100 ms) by the time
	// the first leads; exclusivity itself is TestStoreLeadershipIsExclusive.
	eventually(t, "the other replica to have competed", func() bool { return r1.srv.lockAttempts.Load()+r2.srv.lockAttempts.Load() > 5 })
	if r1.srv.Leading() && r2.srv.Leading() {
		t.Fatal("both replicas hold the assigner lock")
	}
	leader, follower, stopLeader := r1, r2, stop1
	if r2.srv.Leading() {
		leader, follower, stopLeader = r2, r1, stop2
	}

	// Writes through either replica are one registry.
	leader.pool("a", tcPool("p/a", 0, 4, 0, "windows"))
	follower.pool("b", tcPool("p/b", 0, 4, 0, "windows"))
	regs := map[string]*client.Client{}
	var ids []string
	for _, h := range []string{"w1", "w2"} {
		reg, mc := follower.enroll(winFacts(h))
		regs[reg.MachineID] = mc
		ids = append(ids, reg.MachineID)
		if _, err := mc.Heartbeat(ctx, reg.MachineID, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []*env{r1, r2} {
		e.demand.set("a", 2)
	}
	leader.srv.changed()
	inPool := func(e *env, pool string) int {
		list, err := e.admin.ListMachines(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	eventually(t, "the leader to assign both machines to a", func() bool { return inPool(follower, "a") == 2 })

	// A long-poll on the follower wakes for a directive queued through the
	// leader (replica wake-up by polling).
	got := make(chan []client.Directive, 1)
	mc := regs[ids[0]]
	first, err := mc.Directives(ctx, ids[0], 0, 0)
	if err != nil || len(first) != 1 || first[0].Kind != client.DirectiveReassign {
		t.Fatalf("directives before the kill = %+v, %v", first, err)
	}
	after := first[0].ID
	// mc talks to the follower, which registered it.
	go func() {
		ds, _ := mc.Directives(context.Background(), ids[0], after, 30*time.Second)
		got <- ds
	}()
	eventually(t, "the follower's long-poll to wait", func() bool { return follower.srv.notify.waiting(ids[0]) })

	// Kill the leader: its loops stop and its lock session ends.
	stopLeader()
	_ = leader.srv.Close()
	eventually(t, "the follower to take over assigning", follower.srv.Leading)

	// Nothing was lost: the follower serves the registry and assigns. The
	// reboot is queued through a third process's store so that the
	// follower's long-poll must be woken by its replica poll.
	other := openTestStore(t, url)
	if _, err := other.AddDirective(ctx, ids[0], client.Directive{Kind: client.DirectiveReboot, Created: follower.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case ds := <-got:
		if len(ds) != 1 || ds[0].Kind != client.DirectiveReboot {
			t.Fatalf("long-poll got %+v, want the reboot", ds)
		}
	case <-time.After(waitLimit):
		t.Fatal("long-poll did not wake")
	}
	for _, id := range ids {
		if _, err := regs[id].Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
			t.Fatal(err)
		}
	}
	follower.clock.Add(time.Hour)
	for _, id := range ids {
		if _, err := regs[id].Heartbeat(ctx, id, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
			t.Fatal(err)
		}
	}
	follower.demand.set("a", 0)
	follower.demand.set("b", 2)
	follower.srv.changed()
	eventually(t, "the new leader to start moves to b", func() bool {
		list, _ := follower.admin.ListMachines(ctx, "a")
		n := 0
		for _, m := range list {
			if m.MovingTo == "b" {
				n++
			}
		}
		return n == 2
	})

	// If the lock's connection dies, the replica notices and competes again.
	termsBefore := follower.srv.leaderTerms.Load()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted`, assignerLockKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to notice the lost lock and lead again", func() bool { return follower.srv.leaderTerms.Load() >= termsBefore+1 && follower.srv.Leading() })
}
