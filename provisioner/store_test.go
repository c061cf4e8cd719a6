package provisioner

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
)

// storeKinds are the Store implementations every store test runs against.
var storeKinds = []struct {
	name string
	url  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "registry.db") }},
	{"postgres", func(t testing.TB) string { return testsvc.Postgres(t) }},
}

func openTestStore(t testing.TB, url string) Store {
	t.Helper()
	s, err := OpenStore(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func forEachStore(t *testing.T, body func(t *testing.T, s Store)) {
	t.Helper()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			body(t, openTestStore(t, k.url(t)))
		})
	}
}

func TestStoreMigrationsAreIdempotent(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			url := k.url(t)
			s1 := openTestStore(t, url)
			// A second open (another replica) must find everything applied.
			s2 := openTestStore(t, url)
			ctx := context.Background()
			p := client.Pool{PoolID: "p1", Spec: client.PoolSpec{Source: "taskcluster", TaskQueueID: "a/b", MaxCapacity: 1}, Created: time.Now(), Updated: time.Now()}
			if err := s1.PutPool(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := s2.GetPool(ctx, "p1"); err != nil {
				t.Fatalf("second store does not see the first's pool: %v", err)
			}
		})
	}
}

func TestStorePools(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		spec := client.PoolSpec{Source: "taskcluster", TaskQueueID: "proj/win", MinCapacity: 1, MaxCapacity: 4, Priority: 3,
			Constraints: client.Constraints{OS: []string{"windows"}, Tags: map[string]string{"gpu": "yes"}}}
		if err := s.PutPool(ctx, client.Pool{PoolID: "win", Spec: spec, Created: now, Updated: now}); err != nil {
			t.Fatal(err)
		}
		spec.MaxCapacity = 9
		later := now.Add(time.Minute)
		if err := s.PutPool(ctx, client.Pool{PoolID: "win", Spec: spec, Created: later, Updated: later}); err != nil {
			t.Fatal(err)
		}
		p, err := s.GetPool(ctx, "win")
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.MaxCapacity != 9 || p.Spec.Constraints.Tags["gpu"] != "yes" || !p.Created.Equal(now) || !p.Updated.Equal(later) {
			t.Fatalf("pool after update = %+v; want max 9, tags kept, created kept %v, updated %v", p, now, later)
		}
		if err := s.PutPool(ctx, client.Pool{PoolID: "mac", Spec: spec, Created: now, Updated: now}); err != nil {
			t.Fatal(err)
		}
		ps, err := s.ListPools(ctx)
		if err != nil || len(ps) != 2 || ps[0].PoolID != "mac" || ps[1].PoolID != "win" {
			t.Fatalf("ListPools = %+v, %v; want mac, win", ps, err)
		}
		if err := s.DeletePool(ctx, "mac"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePool(ctx, "mac"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
		if _, err := s.GetPool(ctx, "mac"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get deleted: %v, want ErrNotFound", err)
		}
	})
}

func TestStoreMachinesAndHeartbeats(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		m := &MachineRecord{Machine: client.Machine{MachineID: "mini-1", PoolID: "mac", Facts: client.Facts{Hostname: "mini-1", OS: "darwin", Serial: "S1"}, Registered: now},
			TokenHash: hashToken("tok-1"), Identity: "serial:S1"}
		if err := s.InsertMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		dup := *m
		dup.TokenHash = hashToken("tok-2")
		if err := s.InsertMachine(ctx, &dup); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate insert: %v, want ErrConflict", err)
		}
		if id, err := s.MachineIDByTokenHash(ctx, hashToken("tok-1")); err != nil || id != "mini-1" {
			t.Fatalf("MachineIDByTokenHash = %q, %v", id, err)
		}
		if _, err := s.MachineIDByTokenHash(ctx, hashToken("nope")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown token: %v, want ErrNotFound", err)
		}
		if got, err := s.MachineByIdentity(ctx, "serial:S1"); err != nil || got.MachineID != "mini-1" {
			t.Fatalf("MachineByIdentity = %+v, %v", got, err)
		}

		// Task t1 runs for 90 s; the switch to idle records the finished run.
		hb := client.HeartbeatRequest{State: client.StateBusy, CurrentTask: &client.TaskRef{TaskID: "t1", RunID: 0},
			Health: []client.HealthResult{{Name: "disk", OK: true}}, Counters: map[string]int64{"tasks": 4}}
		if err := s.Heartbeat(ctx, "mini-1", hb, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Heartbeat(ctx, "mini-1", hb, now.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.Heartbeat(ctx, "mini-1", client.HeartbeatRequest{State: client.StateIdle}, now.Add(90*time.Second)); err != nil {
			t.Fatal(err)
		}
		runs, err := s.TaskRuns(ctx, "mac", now.Add(-time.Hour))
		if err != nil || len(runs) != 1 || runs[0].TaskID != "t1" || runs[0].Finished.Sub(runs[0].Started) != 90*time.Second {
			t.Fatalf("TaskRuns = %+v, %v; want one 90 s run of t1", runs, err)
		}
		got, err := s.GetMachine(ctx, "mini-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != client.StateIdle || got.CurrentTask != nil || got.LastHeartbeat == nil || !got.LastHeartbeat.Equal(now.Add(90*time.Second)) {
			t.Fatalf("machine after heartbeats = %+v", got)
		}
		if err := s.Heartbeat(ctx, "ghost", hb, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("heartbeat of unknown machine: %v, want ErrNotFound", err)
		}

		// SaveMachine changes provisioner-owned fields and leaves reported ones.
		until := now.Add(time.Hour)
		got.PoolID, got.MovingTo, got.QuarantinedUntil, got.QuarantineReason, got.Draining = "mac2", "mac3", &until, "bad disk", true
		got.State = "tampered"
		if err := s.SaveMachine(ctx, got); err != nil {
			t.Fatal(err)
		}
		again, _ := s.GetMachine(ctx, "mini-1")
		if again.PoolID != "mac2" || again.MovingTo != "mac3" || !again.QuarantinedUntil.Equal(until) || again.QuarantineReason != "bad disk" || !again.Draining || again.State != client.StateIdle {
			t.Fatalf("machine after save = %+v", again)
		}
		list, err := s.ListMachines(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListMachines = %d, %v", len(list), err)
		}
	})
}

func TestStoreDirectivesAndActions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		id1, err := s.AddDirective(ctx, "m1", client.Directive{Kind: client.DirectiveDrain, Reason: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		id2, _ := s.AddDirective(ctx, "m1", client.Directive{Kind: client.DirectiveReboot})
		if _, err := s.AddDirective(ctx, "m2", client.Directive{Kind: client.DirectiveReboot}); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Directives(ctx, "m1", 0)
		if err != nil || len(ds) != 2 || ds[0].ID != id1 || ds[0].Kind != client.DirectiveDrain || ds[0].Reason != "r1" || ds[1].ID != id2 {
			t.Fatalf("Directives = %+v, %v", ds, err)
		}
		ds, _ = s.Directives(ctx, "m1", id1)
		if len(ds) != 1 || ds[0].ID != id2 {
			t.Fatalf("after acking %d: %+v", id1, ds)
		}
		// Acknowledged directives are gone even for a runner that restarts at 0.
		ds, _ = s.Directives(ctx, "m1", 0)
		if len(ds) != 1 || ds[0].ID != id2 {
			t.Fatalf("after restart: %+v", ds)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i, who := range []string{"alice", "bob"} {
			if err := s.AddAction(ctx, "m1", client.Action{Action: "reboot", Who: who, Why: "test", At: now.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		as, err := s.Actions(ctx, "m1", 10)
		if err != nil || len(as) != 2 || as[0].Who != "bob" || as[1].Who != "alice" {
			t.Fatalf("Actions = %+v, %v; want newest first", as, err)
		}
	})
}

func TestStoreTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		exp := now.Add(time.Hour)
		if err := s.InsertToken(ctx, TokenRecord{ID: "e1", Kind: client.TokenEnroll, Hash: hashToken("enroll"), UsesLeft: 2, Expires: &exp, Created: now}); err != nil {
			t.Fatal(err)
		}
		tr, err := s.TokenByHash(ctx, hashToken("enroll"))
		if err != nil || tr.ID != "e1" || tr.UsesLeft != 2 {
			t.Fatalf("TokenByHash = %+v, %v", tr, err)
		}
		for i := range 2 {
			if err := s.UseEnrollmentToken(ctx, hashToken("enroll"), now); err != nil {
				t.Fatalf("use %d: %v", i, err)
			}
		}
		if err := s.UseEnrollmentToken(ctx, hashToken("enroll"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("third use: %v, want ErrNotFound", err)
		}
		if err := s.InsertToken(ctx, TokenRecord{ID: "e2", Kind: client.TokenEnroll, Hash: hashToken("old"), UsesLeft: 5, Expires: &exp, Created: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.UseEnrollmentToken(ctx, hashToken("old"), exp.Add(time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired use: %v, want ErrNotFound", err)
		}
		if err := s.InsertToken(ctx, TokenRecord{ID: "a1", Kind: client.TokenAdmin, Hash: hashToken("adm"), Created: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.UseEnrollmentToken(ctx, hashToken("adm"), now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("admin token used for enrollment: %v, want ErrNotFound", err)
		}
	})
}

func TestStoreLeadershipIsExclusive(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := openTestStore(t, k.url(t))
			ctx := context.Background()
			l, ok, err := s.TryLeadership(ctx)
			if err != nil || !ok {
				t.Fatalf("first TryLeadership = %v, %v", ok, err)
			}
			if _, ok, err := s.TryLeadership(ctx); err != nil || ok {
				t.Fatalf("second TryLeadership while held = %v, %v; want false", ok, err)
			}
			l.Release()
			select {
			case <-l.Lost():
			default:
				t.Fatal("Lost not closed after Release")
			}
			l2, ok, err := s.TryLeadership(ctx)
			if err != nil || !ok {
				t.Fatalf("TryLeadership after release = %v, %v", ok, err)
			}
			l2.Release()
		})
	}
}

func TestStoreApplyMovesIsAllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		var ms []*MachineRecord
		for _, id := range []string{"m1", "m2"} {
			m := &MachineRecord{Machine: client.Machine{MachineID: id, Facts: client.Facts{Hostname: id, OS: "windows"}, Registered: now}, TokenHash: hashToken(id)}
			if err := s.InsertMachine(ctx, m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		write := func(m *MachineRecord, pool string) MoveWrite {
			cp := *m
			cp.PoolID = pool
			return MoveWrite{Machine: &cp, Directive: client.Directive{Kind: client.DirectiveReassign, Created: now}, Action: client.Action{Action: "assign", Who: "assigner", At: now}}
		}
		ghost := &MachineRecord{Machine: client.Machine{MachineID: "ghost"}}
		err := s.ApplyMoves(ctx, []MoveWrite{write(ms[0], "a"), write(ghost, "a")})
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("ApplyMoves with an unknown machine: %v, want ErrNotFound", err)
		}
		if m, _ := s.GetMachine(ctx, "m1"); m.PoolID != "" {
			t.Fatalf("a failed batch left m1 in %q", m.PoolID)
		}
		if ds, _ := s.Directives(ctx, "m1", 0); len(ds) != 0 {
			t.Fatalf("a failed batch left directives %+v", ds)
		}
		if err := s.ApplyMoves(ctx, []MoveWrite{write(ms[0], "a"), write(ms[1], "b")}); err != nil {
			t.Fatal(err)
		}
		for id, pool := range map[string]string{"m1": "a", "m2": "b"} {
			m, _ := s.GetMachine(ctx, id)
			ds, _ := s.Directives(ctx, id, 0)
			as, _ := s.Actions(ctx, id, 5)
			if m.PoolID != pool || len(ds) != 1 || ds[0].Kind != client.DirectiveReassign || len(as) != 1 {
				t.Fatalf("%s after ApplyMoves: pool %q, directives %+v, actions %+v", id, m.PoolID, ds, as)
			}
		}
	})
}

// TestStoreSignOuts: a signed-out session is remembered until it would
// have expired, then forgotten; signing out twice is no error.
func TestStoreSignOuts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		if err := s.EndSession(ctx, "s1", now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		if err := s.EndSession(ctx, "s1", now.Add(time.Hour), now); err != nil {
			t.Fatalf("signing out twice: %v", err)
		}
		for id, want := range map[string]bool{"s1": true, "s2": false} {
			if got, err := s.SessionEnded(ctx, id); err != nil || got != want {
				t.Errorf("SessionEnded(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
		// A later sign-out, after s1 would have expired, forgets s1.
		later := now.Add(2 * time.Hour)
		if err := s.EndSession(ctx, "s2", later.Add(time.Hour), later); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]bool{"s1": false, "s2": true} {
			if got, err := s.SessionEnded(ctx, id); err != nil || got != want {
				t.Errorf("after s1 expired: SessionEnded(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
	})
}
