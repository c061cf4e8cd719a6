package provisioner

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// tenMachines are the candidates of judgeRuns(10, ...), none judged yet.
func tenMachines() map[string]int64 {
	all := map[string]int64{}
	for m := range 10 {
		all[fmt.Sprintf("m%d", m)] = 0
	}
	return all
}

// flaggedIDs lists the machines a judgement flags.
func flaggedIDs(j judgement) []string {
	var out []string
	for _, v := range j.flagged {
		out = append(out, v.machineID)
	}
	return out
}

// TestJudgeCountsOnlyTheMachinesFaults: m3's last 6 runs end in an
// exception; only the reasons that blame the machine flag it.
func TestJudgeCountsOnlyTheMachinesFaults(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	for reason, want := range map[string]bool{
		"internal-error": true, "resource-unavailable": true, "claim-expired": true,
		"malformed-payload": false, "superseded": false, "intermittent-task": false,
		"worker-shutdown": false, "canceled": false, "deadline-exceeded": false,
	} {
		runs := judgeRuns(10, 20, map[string]int{"m3": 6})
		for i := range runs {
			if runs[i].Result == client.ResultFailed {
				runs[i].Result, runs[i].Reason = client.ResultException, reason
			}
		}
		got := flaggedIDs(judgePool(pol, runs, tenMachines(), nil))
		if flagged := len(got) == 1 && got[0] == "m3"; flagged != want {
			t.Errorf("m3's last 6 runs exception %s: flagged %v, want m3 flagged %v", reason, got, want)
		}
	}
}

// TestJudgeCountsATaskOncePerMachine: one task failing six times on m3
// (its reruns, claimed by m3 again) is one failure; a task m3 failed and
// then passed is a pass.
func TestJudgeCountsATaskOncePerMachine(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	runs := judgeRuns(10, 20, map[string]int{"m3": 6})
	run := 0
	for i := range runs {
		if runs[i].Result == client.ResultFailed {
			runs[i].TaskID, runs[i].RunID = "broken", run
			run++
		}
	}
	if j := judgePool(pol, runs, tenMachines(), nil); len(j.flagged) != 0 {
		t.Errorf("one task failing 6 times on m3: flagged %+v, want nobody", j.flagged)
	}
	// m3's six failures each followed by its own passing rerun.
	runs = judgeRuns(10, 20, map[string]int{"m3": 6})
	n := len(runs)
	for i := range n {
		if r := runs[i]; r.Result == client.ResultFailed {
			r.ID, r.RunID, r.Result = int64(n+i+1), 1, client.ResultCompleted
			r.Started, r.Finished = r.Finished, r.Finished.Add(r.Duration())
			runs = append(runs, r)
		}
	}
	sortRuns(runs)
	if j := judgePool(pol, runs, tenMachines(), nil); len(j.flagged) != 0 {
		t.Errorf("m3 passing its 6 failed tasks on their reruns: flagged %+v, want nobody", j.flagged)
	}
}

// TestJudgeLeavesTasksFailingEverywhereOut: m3's six failed tasks also
// failed on m4 and passed nowhere: the tasks' fault, nobody flagged. The
// same tasks failed on a quarantined machine instead are m3's failures.
func TestJudgeLeavesTasksFailingEverywhereOut(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	build := func(other string) []RunRecord {
		runs := judgeRuns(10, 20, map[string]int{"m3": 6})
		n := len(runs)
		for i := range n {
			if r := runs[i]; r.Result == client.ResultFailed {
				r.ID, r.MachineID, r.RunID = int64(n+i+1), other, 1
				r.Started, r.Finished = r.Started.Add(-30*time.Minute), r.Started // before m3's, among m4's own runs
				runs = append(runs, r)
			}
		}
		sortRuns(runs)
		return runs
	}
	if j := judgePool(pol, build("m4"), tenMachines(), nil); len(j.flagged) != 0 {
		t.Errorf("m3's failed tasks failed on m4 too and passed nowhere: flagged %v, want nobody", flaggedIDs(j))
	}
	candidates := tenMachines()
	delete(candidates, "m4")
	j := judgePool(pol, build("m4"), candidates, map[string]bool{"m4": true})
	if got := flaggedIDs(j); len(got) != 1 || got[0] != "m3" || j.flagged[0].failures != 6 {
		t.Errorf("the same, m4 quarantined: flagged %+v, want m3 on its 6 failures", j.flagged)
	}
}

// TestRunSignals: which runs count, and as what.
func TestRunSignals(t *testing.T) {
	pol, _ := effectiveBlackHole(nil)
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var runs []RunRecord
	add := func(machine, task, result, reason string) {
		at := t0.Add(time.Duration(len(runs)) * time.Hour)
		runs = append(runs, RunRecord{ID: int64(len(runs) + 1), MachineID: machine, RunReport: client.RunReport{TaskID: task,
			Kind: client.KindTaskcluster, Result: result, Reason: reason, Started: at, Finished: at.Add(30 * time.Minute)}})
	}
	const ok, failed, exc = client.ResultCompleted, client.ResultFailed, client.ResultException
	add("m1", "everywhere", failed, "")                // 0: failed on m2 too, passed nowhere
	add("m2", "everywhere", failed, "")                // 1: the same
	add("m1", "elsewhere", failed, "")                 // 2: passed on m3
	add("m2", "elsewhere", exc, "internal-error")      // 3: the same
	add("m3", "elsewhere", ok, "")                     // 4: a pass
	add("m1", "with-q", failed, "")                    // 5: failed on q, quarantined: m1's failure
	add("q", "with-q", failed, "")                     // 6: failed on m1 too (q's runs are in no tally anyway)
	add("m1", "twice", failed, "")                     // 7: rerun on m1: the last word counts
	add("m1", "twice", failed, "")                     // 8
	add("m1", "then-passed", failed, "")               // 9: passed on its rerun on m1
	add("m1", "then-passed", ok, "")                   // 10
	add("m1", "bad-payload", exc, "malformed-payload") // 11: the task's fault
	add("m1", "then-canceled", failed, "")             // 12: a cancellation says nothing
	add("m1", "then-canceled", exc, "canceled")        // 13
	facts, _ := runSignals(pol, runs, map[string]bool{"q": true})
	skip, pass, fail, failPassedElse := runFacts{}, runFacts{counted: true}, runFacts{counted: true, failed: true},
		runFacts{counted: true, failed: true, passedElse: true}
	want := []runFacts{skip, skip, failPassedElse, failPassedElse, pass, fail, skip, skip, fail, skip, pass, skip, fail, skip}
	for i := range runs {
		if facts[i] != want[i] {
			t.Errorf("run %d (%s %s %s %s): %+v, want %+v", i, runs[i].MachineID, runs[i].TaskID, runs[i].Result, runs[i].Reason, facts[i], want[i])
		}
	}
}

// sortRuns orders runs as the detector's cache does: by finish, then id.
func sortRuns(runs []RunRecord) {
	slices.SortStableFunc(runs, func(a, b RunRecord) int {
		if c := a.Finished.Compare(b.Finished); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
