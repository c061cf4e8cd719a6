package provisioner

import (
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

func TestMachineTimeline(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHistoryEnv(t, k.url(t), nil)
			start := h.clock.Now()
			// w1: idle, then busy with TaskA, then TaskB (TaskA done after
			// 2 min), a reboot requested, quarantined, then silent until
			// offline.
			h.beat("w1", client.StateIdle, nil)
			h.sample()
			h.clock.Add(time.Minute)
			h.beat("w1", client.StateBusy, &client.TaskRef{TaskID: "TaskA", RunID: 0})
			h.sample()
			h.clock.Add(2 * time.Minute)
			h.beat("w1", client.StateBusy, &client.TaskRef{TaskID: "TaskB", RunID: 1})
			h.sample() // busy → busy: no new row
			if _, err := h.admin.Reboot(h.ctx(), "w1", "driver update"); err != nil {
				t.Fatal(err)
			}
			h.clock.Add(time.Minute)
			if _, err := h.admin.Quarantine(h.ctx(), "w1", "USB hub resets", h.clock.Now().Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			h.sample()
			h.clock.Add(10 * time.Minute) // quarantine over, no heartbeat for 10 min
			h.sample()
			h.sample() // unchanged: no new row

			// The runner reports TaskA failed (with its own, exact times)
			// and TaskS, so short that no heartbeat saw it, completed.
			if _, err := h.srv.store.(*sqlStore).AddRunReports(h.ctx(), []RunRecord{
				{PoolID: "win", MachineID: "w1", RunReport: client.RunReport{TaskID: "TaskA", RunID: 0, Kind: client.KindTaskcluster, Result: "failed",
					Started: start.Add(65 * time.Second), Finished: start.Add(3*time.Minute - time.Second)}},
				{PoolID: "win", MachineID: "w1", RunReport: client.RunReport{TaskID: "TaskS", RunID: 0, Kind: client.KindTaskcluster, Result: "exception", Reason: "canceled",
					Started: start.Add(3*time.Minute + 10*time.Second), Finished: start.Add(3*time.Minute + 20*time.Second)}},
			}, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
			tl, err := h.admin.MachineTimeline(h.ctx(), "w1", "24h")
			if err != nil {
				t.Fatal(err)
			}
			type span struct {
				state, detail string
				from, to      time.Duration
			}
			want := []span{
				{"idle", "", 0, time.Minute},
				{"busy", "", time.Minute, 4 * time.Minute},
				{"quarantined", "USB hub resets", 4 * time.Minute, 14 * time.Minute},
				{"offline", "", 14 * time.Minute, 14 * time.Minute},
			}
			if len(tl.States) != 3 {
				t.Fatalf("states %+v, want idle, busy, quarantined (offline starts now)", tl.States)
			}
			for i, st := range tl.States {
				w := want[i]
				if st.State != w.state || st.Detail != w.detail || !st.From.Equal(start.Add(w.from)) || !st.To.Equal(start.Add(w.to)) {
					t.Fatalf("state %d: %+v, want %+v", i, st, w)
				}
			}
			rows, err := h.srv.historyStore().MachineStates(h.ctx(), "w1", start, h.clock.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 4 || rows[3].State != "offline" {
				t.Fatalf("stored state changes %+v, want 4 ending offline", rows)
			}
			if len(tl.Runs) != 3 || tl.Runs[0].TaskID != "TaskA" || tl.Runs[0].Result != "failed" || !tl.Runs[0].Started.Equal(start.Add(65*time.Second)) ||
				tl.Runs[1].TaskID != "TaskS" || tl.Runs[1].Result != "exception" || tl.Runs[1].Reason != "canceled" ||
				tl.Runs[2].TaskID != "TaskB" || tl.Runs[2].Result != "running" || tl.Runs[2].RunID != 1 {
				t.Fatalf("runs %+v", tl.Runs)
			}
			if len(tl.Reboots) != 2 || tl.Reboots[0].Kind != "boot" || tl.Reboots[1].Kind != "requested" || tl.Reboots[1].Why != "driver update" {
				t.Fatalf("reboots %+v, want the registration and the requested reboot", tl.Reboots)
			}

			body := h.page("/dashboard/machines/w1/history")
			for _, want := range []string{`class="state state-idle"`, `class="state state-busy"`, `class="state state-quarantined"`,
				`class="run result-failed"`, `class="run result-exception"`, "exception (canceled)", `class="run result-running"`, `class="reboot reboot-boot"`, `class="reboot reboot-requested"`,
				"USB hub resets", "TaskA", "driver update"} {
				if !strings.Contains(body, want) {
					t.Fatalf("timeline page lacks %s", want)
				}
			}
			// The range starts inside the busy span: it is cut at the start.
			h.clock.Add(-11*time.Minute - 30*time.Second)
			short, err := h.admin.MachineTimeline(h.ctx(), "w1", "90s")
			if err != nil {
				t.Fatal(err)
			}
			if len(short.States) != 1 || short.States[0].State != "busy" || !short.States[0].From.Equal(short.From) {
				t.Fatalf("90s range at 2m30s: %+v", short.States)
			}
		})
	}
}

func TestHistoryRetention(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHistoryEnv(t, k.url(t), func(c *Config) { c.HistoryRetention = 2 * time.Hour })
			// Ticks at 0, 30 min (w2 busy), 2 h 30 and 3 h (w2 idle);
			// pruning (every 12 min with 2 h of retention) at 3 h cuts
			// everything before 1 h.
			h.beat("w1", client.StateIdle, nil)
			h.beat("w2", client.StateIdle, nil)
			h.sample()
			h.clock.Add(30 * time.Minute)
			h.beat("w2", client.StateBusy, &client.TaskRef{TaskID: "T", RunID: 0})
			h.sample()
			h.clock.Add(2 * time.Hour)
			h.beat("w2", client.StateBusy, &client.TaskRef{TaskID: "T", RunID: 0})
			h.sample()
			h.clock.Add(30 * time.Minute)
			h.beat("w2", client.StateIdle, nil)
			h.sample()
			hs := h.srv.historyStore()
			samples, err := hs.PoolSamples(h.ctx(), "win", time.Unix(0, 0), h.clock.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(samples) != 2 {
				t.Fatalf("%d samples kept, want the 2 within retention", len(samples))
			}
			// Each machine keeps its last change before the cut, so its
			// timeline still knows the state it was in: w1 offline since
			// 30 min, w2 busy since 30 min and idle now.
			latest, err := hs.LatestMachineStates(h.ctx())
			if err != nil {
				t.Fatal(err)
			}
			if latest["w1"].State != "offline" || latest["w2"].State != "idle" {
				t.Fatalf("latest states %+v", latest)
			}
			w2, err := hs.MachineStates(h.ctx(), "w2", time.Unix(0, 0), h.clock.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(w2) != 2 || w2[0].State != "busy" {
				t.Fatalf("w2 states after pruning %+v, want busy then idle", w2)
			}
			w3, err := hs.MachineStates(h.ctx(), "w3", time.Unix(0, 0), h.clock.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(w3) != 1 {
				t.Fatalf("w3 (never heartbeat) states %+v, want its one latest row kept", w3)
			}
		})
	}
}

func TestHistoryOnlyOnLeader(t *testing.T) {
	h := newHistoryEnv(t, sqliteURL(t), nil)
	hs := h.srv.historyStore()
	h.srv.historyTick(h.ctx(), hs)
	samples, err := hs.PoolSamples(h.ctx(), "win", time.Unix(0, 0), h.clock.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 0 {
		t.Fatalf("a replica without the assigner lock sampled: %+v", samples)
	}
	reps, err := hs.Replicas(h.ctx(), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Leading || reps[0].ReplicaID != h.srv.cfg.ReplicaID {
		t.Fatalf("replicas %+v, want this one, not leading", reps)
	}
	h.srv.setLeading(true)
	h.srv.historyTick(h.ctx(), hs)
	h.srv.setLeading(false)
	if samples, _ = hs.PoolSamples(h.ctx(), "win", time.Unix(0, 0), h.clock.Now().Add(time.Second)); len(samples) != 1 {
		t.Fatalf("the leader's tick wrote %d samples, want 1", len(samples))
	}
	if reps, _ = hs.Replicas(h.ctx(), time.Unix(0, 0)); len(reps) != 1 || !reps[0].Leading {
		t.Fatalf("replicas %+v, want this one leading", reps)
	}
}
