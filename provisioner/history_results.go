package provisioner

// The results of a machine's runs on its timeline: the runs machines
// report when they finish (run_reports, which the black-hole detector
// reads too) carry the result and exact times; the heartbeats' task_runs
// see only runs that lasted across a heartbeat.

import (
	"context"
	"sort"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// runKey names one run of one task on a machine.
type runKey struct {
	taskID string
	runID  int
}

func (s *sqlStore) MachineRunReports(ctx context.Context, machineID string, from, to time.Time) ([]RunRecord, error) {
	return s.queryRunReports(ctx, "run reports of "+machineID, `finished >= ? AND finished < ? AND machine_id = ?`, ms(from), ms(to), machineID)
}

// mergeRunReports gives the heartbeats' runs the result the machine
// reported, and adds the reported runs no heartbeat saw; oldest first.
func mergeRunReports(runs []client.RunSpan, reports []RunRecord) []client.RunSpan {
	byKey := map[runKey]RunRecord{}
	for _, r := range reports {
		byKey[runKey{r.TaskID, r.RunID}] = r
	}
	seen := map[runKey]bool{}
	for i, rs := range runs {
		k := runKey{rs.TaskID, rs.RunID}
		if r, ok := byKey[k]; ok && rs.Result != "running" {
			runs[i].Started, runs[i].Finished, runs[i].Result, runs[i].Reason = r.Started, r.Finished, r.Result, r.Reason
			seen[k] = true
		}
	}
	for _, r := range reports {
		k := runKey{r.TaskID, r.RunID}
		if seen[k] {
			continue
		}
		seen[k] = true
		runs = append(runs, client.RunSpan{TaskID: r.TaskID, RunID: r.RunID, Pool: r.PoolID, Started: r.Started, Finished: r.Finished, Result: r.Result, Reason: r.Reason})
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Started.Before(runs[j].Started) })
	return runs
}
