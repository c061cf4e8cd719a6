package provisioner

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

func TestBinomialTail(t *testing.T) {
	for _, c := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{4, 5, 0.03, 5*math.Pow(0.03, 4)*0.97 + math.Pow(0.03, 5)},
		{0, 10, 0.5, 1},
		{11, 10, 0.5, 0},
		{5, 10, 0.5, 0.623046875},
		{20, 20, 0.01, 1e-40},
	} {
		if got := binomialTail(c.k, c.n, c.p); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("P(X ≥ %d | n=%d, p=%g) = %g, want %g", c.k, c.n, c.p, got, c.want)
		}
	}
}

// judgeRuns builds a pool where every machine ran runs tasks, failing as
// fails says (machine → how many of its latest runs failed).
func judgeRuns(machines, runs int, fails map[string]int) []RunRecord {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var out []RunRecord
	id := int64(0)
	for r := range runs {
		for m := range machines {
			mid := fmt.Sprintf("m%d", m)
			id++
			res := client.ResultCompleted
			if r >= runs-fails[mid] {
				res = client.ResultFailed
			}
			at := t0.Add(time.Duration(r)*time.Hour + time.Duration(m)*time.Second)
			out = append(out, RunRecord{ID: id, MachineID: mid, RunReport: client.RunReport{
				TaskID: fmt.Sprintf("t%d-%d", r, m), Kind: client.KindTaskcluster, Result: res, Started: at, Finished: at.Add(30 * time.Minute)}})
		}
	}
	return out
}

func TestJudgePoolWideFailureFlagsNobody(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	all := map[string]int64{}
	fails := map[string]int{}
	for m := range 10 {
		all[fmt.Sprintf("m%d", m)] = 0
		fails[fmt.Sprintf("m%d", m)] = 6
	}
	if j := judgePool(pol, judgeRuns(10, 20, fails), all, nil); len(j.flagged) != 0 || j.note == "" {
		t.Errorf("every machine failing its last 6 runs: flagged %+v (note %q), want nobody and a note", j.flagged, j.note)
	}
	// One machine failing its last 6 stands out.
	if j := judgePool(pol, judgeRuns(10, 20, map[string]int{"m3": 6}), all, nil); len(j.flagged) != 1 || j.flagged[0].machineID != "m3" || j.flagged[0].runs != 6 {
		t.Errorf("m3 failing its last 6 runs: flagged %+v, want m3 on its last 6", j.flagged)
	}
	// Runs already judged do not count again.
	runs := judgeRuns(10, 20, map[string]int{"m3": 6})
	judged := map[string]int64{"m3": runs[len(runs)-1].ID}
	if j := judgePool(pol, runs, judged, nil); len(j.flagged) != 0 {
		t.Errorf("m3's failures already judged: flagged %+v, want nobody", j.flagged)
	}
	// A cancellation or a deadline is nobody's failure.
	runs = judgeRuns(10, 20, map[string]int{"m3": 6})
	for i := range runs {
		if runs[i].Result == client.ResultFailed {
			runs[i].Result, runs[i].Reason = client.ResultException, "canceled"
		}
	}
	if j := judgePool(pol, runs, all, nil); len(j.flagged) != 0 {
		t.Errorf("m3's last 6 runs cancelled: flagged %+v, want nobody", j.flagged)
	}
}

// TestJudgeLeavesQuarantinedMachinesOutOfThePool: in a pool of three, a
// quarantined machine failing everything does not make a second broken
// machine look like a pool-wide failure.
func TestJudgeLeavesQuarantinedMachinesOutOfThePool(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	runs := judgeRuns(3, 20, map[string]int{"m0": 20, "m1": 6})
	candidates := map[string]int64{"m1": 0, "m2": 0}
	if j := judgePool(pol, runs, candidates, nil); len(j.flagged) != 0 {
		t.Fatalf("with m0 counted in the pool (50 %% failing): flagged %+v, want nobody (the ceiling)", j.flagged)
	}
	j := judgePool(pol, runs, candidates, map[string]bool{"m0": true})
	if len(j.flagged) != 1 || j.flagged[0].machineID != "m1" || j.flagged[0].poolRate != 0 {
		t.Errorf("with m0 quarantined: flagged %+v (note %q), want m1 against a pool failing 0 %%", j.flagged, j.note)
	}
}
