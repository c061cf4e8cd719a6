package provisioner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/labrunner/labrunner/provisioner/client"
)

// simMachine is one machine of the simulated pool: how it fails and from
// which round.
type simMachine struct {
	id       string
	failRate float64 // from onset on
	fast     bool    // its failures end in seconds
	onset    int     // first bad round; -1: healthy throughout
	// runsToCatch counts its runs from onset until its first quarantine.
	runsToCatch int
	caught      int // round of the first quarantine, -1 none
}

// simTask is a task waiting for a machine; a rerun carries its run id.
type simTask struct {
	id   string
	run  int
	push bool // from the bad push: fails everywhere
}

// TestBlackHoleSimulation runs 50 machines through 20 000 runs at 3 %
// background failure over the real store and detector on both
// databases, one round (each machine in service runs one task) at a time,
// the detector after every round:
//
//	rounds 20-23   a bad push: 200 tasks that fail on every machine (and
//	               on their reruns)
//	round 40       m01 starts failing 80 % of its runs
//	round 80       m02 starts failing 40 % of its runs within seconds
//	round 250      m10-m14 break at once (80 %)
//
// A failed task is rerun once, on whichever machine takes it next.
func TestBlackHoleSimulation(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			simulate(t, k.url(t))
		})
	}
}

func simulate(t *testing.T, dbURL string) {
	clock := newFakeClock()
	srv, err := New(Config{DB: dbURL, Demand: &fixedDemand{}, Now: clock.Now, CancelPollInterval: -1, DetectInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	st := srv.store
	now := clock.Now()
	if err := st.PutPool(ctx, client.Pool{PoolID: "sim", Spec: tcPool("p/sim", 0, 50, 0, "windows"), Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	const nMachines, totalRuns, background = 50, 20000, 0.03
	const roundLen = 15 * time.Minute
	machines := make([]*simMachine, nMachines)
	for i := range machines {
		machines[i] = &simMachine{id: fmt.Sprintf("m%02d", i), onset: -1, caught: -1}
		rec := &MachineRecord{Machine: client.Machine{MachineID: machines[i].id, PoolID: "sim", Facts: winFacts(machines[i].id), State: client.StateIdle, Registered: now},
			TokenHash: []byte(machines[i].id)}
		if err := st.InsertMachine(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	machines[1].failRate, machines[1].onset = 0.8, 40
	machines[2].failRate, machines[2].onset, machines[2].fast = 0.4, 80, true
	for i := 10; i < 15; i++ {
		machines[i].failRate, machines[i].onset = 0.8, 250
	}
	bad := func(m *simMachine) bool { return m.onset >= 0 }

	rng := rand.New(rand.NewPCG(19, 2026))
	var queue []simTask
	tasks, runs, round := 0, 0, 0
	maxAuto, pushQuarantines := 0, 0
	falsePositives := map[string]bool{}
	for ; runs < totalRuns; round++ {
		start := clock.Now()
		// Who is in service this round.
		recs, err := st.ListMachines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inService := map[string]bool{}
		for _, r := range recs {
			inService[r.MachineID] = !quarantined(r, start)
		}
		var batch []RunRecord
		for _, m := range machines {
			if !inService[m.id] || runs >= totalRuns {
				continue
			}
			var task simTask
			if len(queue) > 0 {
				task, queue = queue[0], queue[1:]
			} else {
				tasks++
				task = simTask{id: fmt.Sprintf("task-%05d", tasks), push: round >= 20 && round < 24}
			}
			failRate, fast := background, false
			if bad(m) && round >= m.onset {
				failRate, fast = m.failRate, m.fast
				if m.caught < 0 {
					m.runsToCatch++
				}
			}
			failed := task.push || rng.Float64() < failRate
			began := start.Add(time.Duration(rng.IntN(120)) * time.Second)
			took := time.Duration(6*60+rng.IntN(8*60)) * time.Second
			if failed && fast && !task.push {
				took = time.Duration(10+rng.IntN(30)) * time.Second
			}
			result, exit := client.ResultCompleted, 0
			if failed {
				result, exit = client.ResultFailed, 1
				if task.run == 0 {
					queue = append(queue, simTask{id: task.id, run: 1, push: task.push})
				}
			}
			batch = append(batch, RunRecord{PoolID: "sim", MachineID: m.id, RunReport: client.RunReport{
				TaskID: task.id, RunID: task.run, Kind: client.KindTaskcluster, Result: result, ExitCode: &exit,
				Started: began, Finished: began.Add(took)}})
			runs++
		}
		clock.Add(roundLen)
		if _, err := st.AddRunReports(ctx, batch, clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := srv.DetectOnce(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		recs, err = st.ListMachines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		auto := 0
		for i, r := range recs {
			if !quarantined(r, clock.Now()) || !strings.HasPrefix(r.QuarantineReason, "black hole:") {
				continue
			}
			auto++
			m := machines[i]
			if !bad(m) || round < m.onset {
				if !falsePositives[m.id] {
					t.Errorf("round %d: healthy %s quarantined: %s", round, m.id, r.QuarantineReason)
				}
				falsePositives[m.id] = true
			}
			if round >= 20 && round < 30 {
				pushQuarantines++
			}
			if bad(m) && m.caught < 0 {
				m.caught = round
				t.Logf("round %d: %s quarantined after %d of its bad runs: %s", round, m.id, m.runsToCatch, r.QuarantineReason)
			}
		}
		maxAuto = max(maxAuto, auto)
		if auto > 5 {
			t.Errorf("round %d: %d machines quarantined by the detector, over the cap of 5 (10 %% of 50)", round, auto)
		}
	}
	t.Logf("%d runs of %d tasks in %d rounds", runs, tasks, round)
	if pushQuarantines != 0 {
		t.Errorf("the bad push (rounds 20-23) led to %d quarantines, want none", pushQuarantines)
	}
	m01, m02 := machines[1], machines[2]
	if m01.caught < 0 || m01.runsToCatch > 10 {
		t.Errorf("the 80 %% failer was caught after %d of its bad runs (round %d), want within 10", m01.runsToCatch, m01.caught)
	}
	if m02.caught < 0 {
		t.Errorf("the fast failer was never caught (%d bad runs)", m02.runsToCatch)
	}
	var pb dto.Metric
	if err := srv.metrics.blackHoleCapped.WithLabelValues("sim").Write(&pb); err != nil {
		t.Fatal(err)
	}
	capped := pb.GetCounter().GetValue()
	if maxAuto != 5 || capped == 0 {
		t.Errorf("five breaking at once beside two known black holes: at most %d quarantined at once and %v held back by the cap, want the cap (5) reached and some held back", maxAuto, capped)
	}
	for _, m := range machines[10:15] {
		if m.caught < 0 {
			t.Errorf("%s (broken at round 250) was never quarantined", m.id)
		}
	}
	t.Logf("FIGURE black-hole detection delay, 80 %% failer: %d of its runs", m01.runsToCatch)
	t.Logf("FIGURE black-hole detection delay, fast failer (40 %% of runs failing in seconds): %d of its runs", m02.runsToCatch)
	t.Logf("FIGURE black-hole false positives (healthy machines quarantined, %d runs, 3 %% background): %d", runs, len(falsePositives))
	t.Logf("FIGURE black-hole quarantines during the bad push (200 tasks failing everywhere): %d", pushQuarantines)
	t.Logf("FIGURE black-hole most machines quarantined at once (cap 5): %d; held back by the cap: %v", maxAuto, capped)
}
