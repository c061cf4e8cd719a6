package provisioner

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

var planNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// mach builds a machine for plan tests: pool, OS and state; options
// change it.
func mach(id, pool, os, state string, opts ...func(*MachineRecord)) *MachineRecord {
	hb := planNow.Add(-10 * time.Second)
	m := &MachineRecord{Machine: client.Machine{MachineID: id, PoolID: pool, State: state, LastHeartbeat: &hb, Facts: client.Facts{Hostname: id, OS: os}}}
	if state == client.StateBusy {
		m.CurrentTask = &client.TaskRef{TaskID: "task-" + id}
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func movedAgo(d time.Duration) func(*MachineRecord) {
	return func(m *MachineRecord) { t := planNow.Add(-d); m.LastMoved = &t }
}

func offline(m *MachineRecord) {
	t := planNow.Add(-time.Hour)
	m.LastHeartbeat = &t
}

func quarantinedM(m *MachineRecord) {
	t := planNow.Add(time.Hour)
	m.QuarantinedUntil = &t
}

func idleMachines(prefix, pool, os string, n int, opts ...func(*MachineRecord)) []*MachineRecord {
	var out []*MachineRecord
	for i := range n {
		out = append(out, mach(fmt.Sprintf("%s%02d", prefix, i), pool, os, client.StateIdle, opts...))
	}
	return out
}

func poolOf(id string, minC, maxC, prio int, os ...string) client.Pool {
	spec := tcPool("p/"+id, minC, maxC, prio, os...)
	spec.ScalingRatio = 1
	return client.Pool{PoolID: id, Spec: spec}
}

// summary renders moves as sorted "machine:from>to" for comparison.
func summary(moves []move) string {
	var s []string
	for _, m := range moves {
		s = append(s, m.machine.MachineID+":"+m.from+">"+m.to)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func countTo(moves []move, to string) int {
	n := 0
	for _, m := range moves {
		if m.to == to {
			n++
		}
	}
	return n
}

func TestPlan(t *testing.T) {
	type tc struct {
		name     string
		pools    []client.Pool
		machines []*MachineRecord
		pending  map[string]int64
		check    func(t *testing.T, moves []move)
	}
	cases := []tc{
		{
			name:     "idle machines move toward demand, donor keeps its minimum",
			pools:    []client.Pool{poolOf("a", 0, 5, 0), poolOf("b", 1, 5, 0)},
			machines: idleMachines("b", "b", "windows", 4),
			pending:  map[string]int64{"a": 3, "b": 0},
			check: func(t *testing.T, moves []move) {
				if countTo(moves, "a") != 3 || len(moves) != 3 {
					t.Fatalf("moves %s; want 3 to a", summary(moves))
				}
			},
		},
		{
			name:     "never above maxCapacity",
			pools:    []client.Pool{poolOf("a", 0, 2, 0), poolOf("b", 0, 9, 0)},
			machines: idleMachines("b", "b", "windows", 6),
			pending:  map[string]int64{"a": 10, "b": 0},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 2 || countTo(moves, "a") != 2 {
					t.Fatalf("moves %s; want exactly 2 to a", summary(moves))
				}
			},
		},
		{
			name:     "donor never below minCapacity",
			pools:    []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 3, 9, 0)},
			machines: idleMachines("b", "b", "windows", 4),
			pending:  map[string]int64{"a": 5, "b": 0},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 1 {
					t.Fatalf("moves %s; want 1 (b keeps 3)", summary(moves))
				}
			},
		},
		{
			name:     "constraints: macOS machines never go to a Windows pool",
			pools:    []client.Pool{poolOf("win", 0, 9, 0, "windows"), poolOf("mac", 0, 9, 0, "darwin")},
			machines: append(idleMachines("m", "mac", "darwin", 3), idleMachines("w", "mac", "windows", 1)...),
			pending:  map[string]int64{"win": 5, "mac": 0},
			check: func(t *testing.T, moves []move) {
				if summary(moves) != "w00:mac>win" {
					t.Fatalf("moves %s; want only the Windows machine", summary(moves))
				}
			},
		},
		{
			name:  "busy, quarantined, offline and draining machines stay",
			pools: []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 0, 9, 0)},
			machines: []*MachineRecord{
				mach("busy", "b", "windows", client.StateBusy),
				mach("quar", "b", "windows", client.StateIdle, quarantinedM),
				mach("off", "b", "windows", client.StateIdle, offline),
				mach("drain", "b", "windows", client.StateIdle, func(m *MachineRecord) { m.Draining = true }),
				mach("starting", "b", "windows", client.StateStarting),
				mach("claimed", "b", "windows", client.StateIdle, func(m *MachineRecord) { m.CurrentTask = &client.TaskRef{TaskID: "x"} }),
			},
			pending: map[string]int64{"a": 5, "b": 0},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 0 {
					t.Fatalf("moves %s; want none", summary(moves))
				}
			},
		},
		{
			name:     "higher priority pool is served first",
			pools:    []client.Pool{poolOf("low", 0, 9, 1), poolOf("high", 0, 9, 5), poolOf("idle", 0, 9, 0)},
			machines: idleMachines("i", "idle", "windows", 2),
			pending:  map[string]int64{"low": 5, "high": 2, "idle": 0},
			check: func(t *testing.T, moves []move) {
				if countTo(moves, "high") != 2 || countTo(moves, "low") != 0 {
					t.Fatalf("moves %s; want both to high", summary(moves))
				}
			},
		},
		{
			name:     "hysteresis: recently moved machines stay",
			pools:    []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 0, 9, 0)},
			machines: append(idleMachines("r", "b", "windows", 2, movedAgo(5*time.Minute)), idleMachines("o", "b", "windows", 1, movedAgo(time.Hour))...),
			pending:  map[string]int64{"a": 3, "b": 0},
			check: func(t *testing.T, moves []move) {
				if summary(moves) != "o00:b>a" {
					t.Fatalf("moves %s; want only o00", summary(moves))
				}
			},
		},
		{
			name:     "unassigned machines are used before taking from pools",
			pools:    []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 0, 9, 0)},
			machines: append(idleMachines("b", "b", "windows", 2), idleMachines("u", "", "windows", 1, movedAgo(time.Minute))...),
			pending:  map[string]int64{"a": 1, "b": 0},
			check: func(t *testing.T, moves []move) {
				if summary(moves) != "u00:>a" {
					t.Fatalf("moves %s; want the unassigned machine", summary(moves))
				}
			},
		},
		{
			name:     "unknown demand neither gives nor takes",
			pools:    []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 0, 9, 0)},
			machines: idleMachines("b", "b", "windows", 3),
			pending:  map[string]int64{"a": 3},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 0 {
					t.Fatalf("moves %s; want none while b's demand is unknown", summary(moves))
				}
			},
		},
		{
			name:     "a pool above a lowered maximum releases idle machines",
			pools:    []client.Pool{poolOf("a", 0, 1, 0)},
			machines: append(idleMachines("a", "a", "windows", 3), mach("abusy", "a", "windows", client.StateBusy)),
			pending:  map[string]int64{"a": 0},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 3 || countTo(moves, "") != 3 {
					t.Fatalf("moves %s; want 3 released (the busy one stays)", summary(moves))
				}
			},
		},
		{
			name:     "running tasks count as demand: busy pool keeps its idle machine",
			pools:    []client.Pool{poolOf("a", 0, 9, 0), poolOf("b", 0, 9, 0)},
			machines: append(idleMachines("b", "b", "windows", 1), mach("bb", "b", "windows", client.StateBusy)),
			pending:  map[string]int64{"a": 1, "b": 1},
			check: func(t *testing.T, moves []move) {
				if len(moves) != 0 {
					t.Fatalf("moves %s; want none: b needs 1 running + 1 pending", summary(moves))
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			moves, _ := plan(planInput{pools: c.pools, machines: c.machines, pending: c.pending, now: planNow, moveInterval: 15 * time.Minute, offlineAfter: 5 * time.Minute})
			c.check(t, moves)
		})
	}
}

func TestDesiredCapacityIsWorkerManagersEstimatorOnBusyMachines(t *testing.T) {
	spec := client.PoolSpec{MinCapacity: 2, MaxCapacity: 10, ScalingRatio: 0.5}
	for _, c := range []struct {
		pending int64
		busy    int
		want    int
	}{{0, 0, 2}, {3, 0, 2}, {5, 1, 4}, {40, 3, 10}, {1, 5, 6}} {
		if got := desiredCapacity(spec, c.pending, c.busy); got != c.want {
			t.Errorf("desired(pending %d, busy %d) = %d, want %d", c.pending, c.busy, got, c.want)
		}
	}
}

// TestAssignerFollowsDemandWithoutFlapping drives AssignOnce through the
// store on both databases with synthetic demand and a fake clock.
func TestAssignerFollowsDemandWithoutFlapping(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		e := newEnv(t, "", func(c *Config) { c.Store = s; c.MoveInterval = 10 * time.Minute })
		ctx := e.ctx()
		e.pool("a", tcPool("p/a", 0, 4, 0, "windows"))
		e.pool("b", tcPool("p/b", 0, 4, 0, "windows"))
		e.pool("mac", tcPool("p/mac", 0, 4, 0, "darwin"))
		type box struct {
			id string
			c  *client.Client
		}
		var ms []box
		for i := range 4 {
			reg, mc := e.enroll(winFacts(fmt.Sprintf("w%d", i)))
			ms = append(ms, box{reg.MachineID, mc})
		}
		beat := func(state string) {
			t.Helper()
			for i, m := range ms {
				hb := client.HeartbeatRequest{State: state}
				if i == 0 && state != client.StateDrained {
					hb = client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "long"}}
				}
				if _, err := m.c.Heartbeat(ctx, m.id, 0, hb); err != nil {
					t.Fatal(err)
				}
			}
		}
		byPool := func() map[string]int {
			list, err := e.admin.ListMachines(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]int{}
			for _, m := range list {
				out[m.PoolID]++
			}
			return out
		}
		pass := func() {
			t.Helper()
			if err := e.srv.AssignOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range ms {
			if _, err := m.c.Heartbeat(ctx, m.id, 0, client.HeartbeatRequest{State: client.StateIdle}); err != nil {
				t.Fatal(err)
			}
		}
		e.demand.set("a", 4)
		e.demand.set("mac", 7)
		pass()
		if got := byPool(); got["a"] != 4 || got["mac"] != 0 {
			t.Fatalf("after demand on a: %v; want all 4 Windows machines in a, none in mac", got)
		}
		for _, m := range ms {
			ds, _ := m.c.Directives(ctx, m.id, 0, 0)
			if len(ds) != 1 || ds[0].Kind != client.DirectiveReassign || ds[0].Assignment.PoolID != "a" {
				t.Fatalf("%s directives %+v; want one reassign to a", m.id, ds)
			}
			_, _ = m.c.Directives(ctx, m.id, ds[0].ID, 0)
		}
		// Demand flips at once: nothing moves within the move interval.
		beat(client.StateIdle)
		e.demand.set("a", 0)
		e.demand.set("b", 4)
		pass()
		if got := byPool(); got["a"] != 4 {
			t.Fatalf("machines moved again within the move interval: %v", got)
		}
		// Past the interval, idle machines drain for b; the busy one stays.
		e.clock.Add(11 * time.Minute)
		beat(client.StateIdle)
		pass()
		list, _ := e.admin.ListMachines(ctx, "a")
		draining := 0
		for _, m := range list {
			if m.MovingTo == "b" {
				draining++
				if m.MachineID == ms[0].id {
					t.Fatalf("the busy machine %s was moved", m.MachineID)
				}
			}
		}
		if draining != 3 {
			t.Fatalf("%d machines draining for b, want 3", draining)
		}
		// Drained machines complete the move on their heartbeat.
		for _, m := range ms[1:] {
			hb, err := m.c.Heartbeat(ctx, m.id, 0, client.HeartbeatRequest{State: client.StateDrained})
			if err != nil {
				t.Fatal(err)
			}
			kinds := []string{}
			for _, d := range hb.Directives {
				kinds = append(kinds, d.Kind)
			}
			if strings.Join(kinds, ",") != "drain,reassign" {
				t.Fatalf("%s got %v, want drain then reassign", m.id, kinds)
			}
		}
		if got := byPool(); got["a"] != 1 || got["b"] != 3 {
			t.Fatalf("after the move: %v; want a:1 (busy) b:3", got)
		}
		// Flip back: within the interval nothing moves.
		beat(client.StateIdle)
		e.demand.set("a", 4)
		e.demand.set("b", 0)
		pass()
		if got := byPool(); got["b"] != 3 {
			t.Fatalf("flapped back within the interval: %v", got)
		}
		for _, m := range ms {
			d, _ := e.admin.GetMachine(ctx, m.id)
			assigns := 0
			for _, a := range d.Actions {
				if a.Action == "assign" {
					assigns++
				}
			}
			if assigns > 2 {
				t.Fatalf("%s was assigned %d times", m.id, assigns)
			}
		}
	})
}
