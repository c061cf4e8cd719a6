package provisioner

// Which reported runs are evidence about a machine, before any statistic
// (blackhole_judge.go) is computed on them (docs/provisioner.md, "Black
// holes", What counts):
//
//	completed                                 a pass
//	failed, or an exception blaming the machine a failure, unless its task
//	                                          failed on another machine and
//	                                          completed nowhere (the task's fault)
//	any other exception                       nothing: nobody's fault, the
//	                                          task's, or ours
//	a run the machine ran the task again after nothing: a task counts once
//	                                          per machine, its last word
//
// A failure is then fast (shorter than fastFraction of its kind's median
// completed run) and passed elsewhere (its task completed on another
// machine) or not.

import (
	"slices"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// machineReasons are the exception reasons (the queue's reasonResolved)
// that blame the machine. The runner's own quarantine counts the first
// two the same way (runner/rundone.go). claim-expired is a claim the
// machine stopped renewing: it hung, lost its network or its power, far
// more often than a task made it; a queue outage that expires every
// machine's claims is pool-wide, which the pool's ceiling catches. (The
// runner reports only runs it resolved, so it never sends one.)
// Everything else is nobody's fault (canceled, deadline-exceeded,
// superseded), the task's (malformed-payload, intermittent-task), or
// ours (worker-shutdown: drains, reboots, restarts).
var machineReasons = map[string]bool{
	"internal-error":       true,
	"resource-unavailable": true,
	"claim-expired":        true,
}

// blamesMachine says whether a run's result counts against its machine.
func blamesMachine(r *RunRecord) bool {
	switch r.Result {
	case client.ResultFailed:
		return true
	case client.ResultException:
		return machineReasons[r.Reason]
	}
	return false
}

// runFacts are what the signals need of one run; a run not counted is in
// no tally.
type runFacts struct {
	counted, failed, fast, passedElse bool
}

// runSignals marks each run of runs (ordered by finish) counted, failed,
// fast and passed elsewhere, and returns the medians by kind. Failures on
// machines in excluded (quarantined ones) do not make a task one that
// fails everywhere: those machines are known to be at fault.
func runSignals(pol blackHolePolicy, runs []RunRecord, excluded map[string]bool) ([]runFacts, map[string]time.Duration) {
	type key struct{ machine, task string }
	durations := map[string][]time.Duration{}
	completedOn := map[string][]string{} // task → machines that completed it
	failedOn := map[string][]string{}    // task → machines not excluded that failed it
	latest := map[key]int{}              // each machine's last counted run of each task
	for i := range runs {
		r := &runs[i]
		switch {
		case r.Result == client.ResultCompleted:
			durations[r.Kind] = append(durations[r.Kind], r.Duration())
			completedOn[r.TaskID] = append(completedOn[r.TaskID], r.MachineID)
		case blamesMachine(r):
			if !excluded[r.MachineID] {
				failedOn[r.TaskID] = append(failedOn[r.TaskID], r.MachineID)
			}
		default:
			continue
		}
		latest[key{r.MachineID, r.TaskID}] = i
	}
	medians := map[string]time.Duration{}
	for kind, ds := range durations {
		if len(ds) >= minMedianRuns {
			slices.Sort(ds)
			medians[kind] = ds[len(ds)/2]
		}
	}
	elsewhere := func(machines []string, here string) bool {
		return slices.ContainsFunc(machines, func(m string) bool { return m != here })
	}
	facts := make([]runFacts, len(runs))
	for i := range runs {
		r := &runs[i]
		if j, ok := latest[key{r.MachineID, r.TaskID}]; !ok || j != i {
			continue // nobody's fault, or not the machine's last word on the task
		}
		if !blamesMachine(r) {
			facts[i] = runFacts{counted: true}
			continue
		}
		if len(completedOn[r.TaskID]) == 0 && elsewhere(failedOn[r.TaskID], r.MachineID) {
			continue // fails everywhere: the task's fault
		}
		f := runFacts{counted: true, failed: true, passedElse: elsewhere(completedOn[r.TaskID], r.MachineID)}
		if m, ok := medians[r.Kind]; ok && float64(r.Duration()) < pol.fastFraction*float64(m) {
			f.fast = true
		}
		facts[i] = f
	}
	return facts, medians
}
