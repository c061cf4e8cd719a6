package provisioner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
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
			simulate(t, k.url(t), 19)
		})
	}
}

// TestBlackHoleSimulationSeeds runs the simulation with seeds 1 to
// $LABRUNNER_BLACKHOLE_SEEDS on SQLite (the figures do not depend on the
// store) and logs the range of its figures, for docs/provisioner.md.
func TestBlackHoleSimulationSeeds(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LABRUNNER_BLACKHOLE_SEEDS"))
	if n <= 0 {
		t.Skip("set LABRUNNER_BLACKHOLE_SEEDS to a number of seeds")
	}
	var all []simFigures
	for seed := range n {
		t.Run(fmt.Sprintf("seed-%d", seed+1), func(t *testing.T) {
			all = append(all, simulate(t, storeKinds[0].url(t), uint64(seed+1)))
		})
	}
	if len(all) < n {
		t.Fatal("a seed stopped its simulation")
	}
	span := func(get func(simFigures) int) string {
		lo, hi := get(all[0]), get(all[0])
		for _, f := range all {
			lo, hi = min(lo, get(f)), max(hi, get(f))
		}
		return fmt.Sprintf("%d-%d", lo, hi)
	}
	t.Logf("FIGURE over %d seeds: 80 %% failer caught after %s of its runs, fast failer %s, first of the five breaking at once %s; false positives %s, during the bad push %s",
		n, span(func(f simFigures) int { return f.m01 }), span(func(f simFigures) int { return f.m02 }),
		span(func(f simFigures) int { return slices.Min(f.breakers) }), span(func(f simFigures) int { return f.falsePositives }),
		span(func(f simFigures) int { return f.pushQuarantines }))
}

// simFigures are what a simulation measured: how many of their bad runs
// m01, m02 and m10-m14 ran before their first quarantine, and the
// quarantines of healthy machines and during the bad push.
type simFigures struct {
	m01, m02                        int
	breakers                        []int
	falsePositives, pushQuarantines int
}

// newSimPool starts a server (no loops: the test calls DetectOnce) with
// pool "sim" (default black-hole settings) of machines m00, m01, ...
func newSimPool(t *testing.T, dbURL string, machines int) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	srv, err := New(Config{DB: dbURL, Demand: &fixedDemand{}, Now: clock.Now, CancelPollInterval: -1, DetectInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	now := clock.Now()
	if err := srv.store.PutPool(ctx, client.Pool{PoolID: "sim", Spec: tcPool("p/sim", 0, machines, 0, "windows"), Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	for i := range machines {
		id := fmt.Sprintf("m%02d", i)
		rec := &MachineRecord{Machine: client.Machine{MachineID: id, PoolID: "sim", Facts: winFacts(id), State: client.StateIdle, Registered: now},
			TokenHash: []byte(id)}
		if err := srv.store.InsertMachine(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	return srv, clock
}

func simulate(t *testing.T, dbURL string, seed uint64) simFigures {
	const nMachines, totalRuns, background = 50, 20000, 0.03
	const roundLen = 15 * time.Minute
	srv, clock := newSimPool(t, dbURL, nMachines)
	ctx := context.Background()
	st := srv.store
	machines := make([]*simMachine, nMachines)
	for i := range machines {
		machines[i] = &simMachine{id: fmt.Sprintf("m%02d", i), onset: -1, caught: -1}
	}
	machines[1].failRate, machines[1].onset = 0.8, 40
	machines[2].failRate, machines[2].onset, machines[2].fast = 0.4, 80, true
	for i := 10; i < 15; i++ {
		machines[i].failRate, machines[i].onset = 0.8, 250
	}
	bad := func(m *simMachine) bool { return m.onset >= 0 }

	rng := rand.New(rand.NewPCG(seed, 2026))
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
	fig := simFigures{m01: m01.runsToCatch, m02: m02.runsToCatch, falsePositives: len(falsePositives), pushQuarantines: pushQuarantines}
	for _, m := range machines[10:15] {
		if m.caught < 0 {
			t.Errorf("%s (broken at round 250) was never quarantined", m.id)
		}
		fig.breakers = append(fig.breakers, m.runsToCatch)
	}
	t.Logf("FIGURE black-hole detection delay, 80 %% failer: %d of its runs", m01.runsToCatch)
	t.Logf("FIGURE black-hole detection delay, fast failer (40 %% of runs failing in seconds): %d of its runs", m02.runsToCatch)
	t.Logf("FIGURE black-hole false positives (healthy machines quarantined, %d runs, 3 %% background): %d", runs, len(falsePositives))
	t.Logf("FIGURE black-hole quarantines during the bad push (200 tasks failing everywhere): %d", pushQuarantines)
	t.Logf("FIGURE black-hole most machines quarantined at once (cap 5): %d; held back by the cap: %v", maxAuto, capped)
	t.Logf("FIGURE black-hole detection delays of the five breaking at once (with the cap): %v of their runs", fig.breakers)
	return fig
}

// TestBlackHoleTaskFaultsQuarantineNobody: a pool of 10 machines that
// fail nothing else, default settings, the real store and detector (a
// pass after every report) on both databases. m00, the one idle machine
// while the others run long tasks, takes what fails fast back to back:
//
//	malformed push     five malformed-payload tasks of one push
//	intermittent task  one broken task resolved intermittent-task and
//	                   retried by the queue, five times
//	reruns             one task failing five times (its reruns)
//
// Nobody is quarantined: the tasks are at fault. Five tasks ending in
// internal-error, the machine's fault, do quarantine m00, so the same
// pool can tell.
func TestBlackHoleTaskFaultsQuarantineNobody(t *testing.T) {
	type run struct {
		task           string
		run            int
		result, reason string
	}
	five := func(f func(i int) run) []run {
		var out []run
		for i := range 5 {
			out = append(out, f(i))
		}
		return out
	}
	scenarios := []struct {
		name  string
		runs  []run
		black bool // m00 is a black hole
	}{
		{"malformed push", five(func(i int) run {
			return run{fmt.Sprintf("push-%d", i), 0, client.ResultException, "malformed-payload"}
		}), false},
		{"intermittent task", five(func(i int) run { return run{"flaky", i, client.ResultException, "intermittent-task"} }), false},
		{"reruns", five(func(i int) run { return run{"broken", i, client.ResultFailed, ""} }), false},
		{"internal errors", five(func(i int) run {
			return run{fmt.Sprintf("task-%d", i), 0, client.ResultException, "internal-error"}
		}), true},
	}
	for _, k := range storeKinds {
		for _, sc := range scenarios {
			t.Run(k.name+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				srv, clock := newSimPool(t, k.url(t), 10)
				ctx := context.Background()
				tasks := 0
				var quarantined []string
				report := func(machine string, r run, started time.Time, took time.Duration) {
					t.Helper()
					if r.task == "" {
						tasks++
						r = run{task: fmt.Sprintf("task-%04d", tasks), result: client.ResultCompleted}
					}
					var exit *int
					if r.result != client.ResultException {
						code := map[bool]int{true: 0, false: 1}[r.result == client.ResultCompleted]
						exit = &code
					}
					if _, err := srv.store.AddRunReports(ctx, []RunRecord{{PoolID: "sim", MachineID: machine, RunReport: client.RunReport{
						TaskID: r.task, RunID: r.run, Kind: client.KindTaskcluster, Result: r.result, Reason: r.reason, ExitCode: exit,
						Started: started, Finished: started.Add(took)}}}, clock.Now()); err != nil {
						t.Fatal(err)
					}
					if err := srv.DetectOnce(ctx); err != nil {
						t.Fatal(err)
					}
					recs, err := srv.store.ListMachines(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range recs {
						if m.QuarantinedUntil != nil && !slices.Contains(quarantined, m.MachineID) {
							quarantined = append(quarantined, m.MachineID)
							t.Logf("%s quarantined: %s", m.MachineID, m.QuarantineReason)
						}
					}
				}
				machine := func(i int) string { return fmt.Sprintf("m%02d", i) }
				// Three rounds of passes, 6 to 14 minutes each.
				round := func() {
					start := clock.Now()
					clock.Add(15 * time.Minute)
					for i := range 10 {
						report(machine(i), run{}, start, time.Duration(6+i)*time.Minute)
					}
				}
				for range 3 {
					round()
				}
				// The others run long tasks; m00 fails in seconds what it
				// takes, reporting each, then the others finish theirs.
				start := clock.Now()
				for i, r := range sc.runs {
					clock.Add(5 * time.Second)
					report(machine(0), r, start.Add(time.Duration(i)*5*time.Second), 3*time.Second)
				}
				clock.Add(10 * time.Minute)
				for i := 1; i < 10; i++ {
					report(machine(i), run{}, start, 10*time.Minute)
				}
				for range 2 {
					round()
				}
				want := []string(nil)
				if sc.black {
					want = []string{"m00"}
				}
				if !slices.Equal(quarantined, want) {
					t.Errorf("quarantined %v, want %v", quarantined, want)
				}
			})
		}
	}
}
