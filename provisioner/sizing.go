package provisioner

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"

	"github.com/labrunner/labrunner/provisioner/client"
)

// computeSizing answers "how many machines does this pool need?" from the
// registry, the pending count and the durations of recent runs. The
// recommendation adds two needs (Little's law):
//
//	steady  = arrival rate × mean duration        (machines kept busy)
//	backlog = pending × median duration / target wait (to clear the queue in time)
func computeSizing(pool client.Pool, machines []*MachineRecord, pending int64, pendingErr error, runs []TaskRun, s *Server) client.Sizing {
	now := s.now()
	spec := pool.Spec
	out := client.Sizing{PoolID: pool.PoolID, Pending: pending, MinCapacity: spec.MinCapacity, MaxCapacity: spec.MaxCapacity,
		WindowSeconds: int64(s.cfg.SizingWindow.Seconds()), TargetWaitSeconds: spec.TargetWaitSeconds}
	if out.TargetWaitSeconds == 0 {
		out.TargetWaitSeconds = 600
	}
	for _, m := range machines {
		if m.PoolID != pool.PoolID {
			continue
		}
		out.Assigned++
		switch {
		case quarantined(m, now):
			out.Quarantined++
		case !online(m, now, s.cfg.OfflineAfter):
			out.Offline++
		case isBusy(m):
			out.Running++
		case !m.Draining && m.MovingTo == "":
			out.Idle++
		}
	}
	why := &out.Reasoning
	say := func(format string, args ...any) { *why = append(*why, fmt.Sprintf(format, args...)) }
	if pendingErr != nil {
		say("The pending count is unavailable (%v); it is taken as 0.", pendingErr)
	}
	out.Target = desiredCapacity(spec, pending, out.Running)
	say("%s pending and %d running; %s assigned (%d idle, %d quarantined, %d offline).",
		count(pending, "task is", "tasks are"), out.Running, count(out.Assigned, "machine is", "machines are"), out.Idle, out.Quarantined, out.Offline)
	say("The assigner's target is max(minCapacity %d, min(pending %d × scalingRatio %g + running %d, maxCapacity %d)) = %d.",
		spec.MinCapacity, pending, ratioOf(spec), out.Running, spec.MaxCapacity, out.Target)

	durs := make([]float64, 0, len(runs))
	var sum float64
	for _, r := range runs {
		d := r.Finished.Sub(r.Started).Seconds()
		durs = append(durs, d)
		sum += d
	}
	sort.Float64s(durs)
	out.TasksInWindow = len(durs)
	serving := out.Running + out.Idle
	if len(durs) == 0 {
		out.RecommendedCapacity = out.Target
		say("No task finished in the last %s, so durations are unknown; the recommendation falls back to the target, %d.", s.cfg.SizingWindow, out.Target)
		out.DrainSeconds = -1
		return out
	}
	out.MedianTaskSeconds = percentile(durs, 0.5)
	out.P90TaskSeconds = percentile(durs, 0.9)
	mean := sum / float64(len(durs))
	say("%s finished in the last %s: median %.0f s, 90th percentile %.0f s, mean %.0f s.",
		count(len(durs), "task", "tasks"), s.cfg.SizingWindow, out.MedianTaskSeconds, out.P90TaskSeconds, mean)
	if serving > 0 {
		out.DrainSeconds = math.Ceil(float64(pending) * out.MedianTaskSeconds / float64(serving))
		say("With %s serving, the pending tasks take about %.0f s to drain (pending × median ÷ machines).", count(serving, "machine", "machines"), out.DrainSeconds)
	} else {
		out.DrainSeconds = -1
		if pending > 0 {
			say("No machine serves the pool, so the pending tasks never drain until machines are assigned.")
		}
	}
	rate := float64(len(durs)) / s.cfg.SizingWindow.Seconds()
	steady := rate * mean
	backlog := float64(pending) * out.MedianTaskSeconds / float64(out.TargetWaitSeconds)
	rec := int(math.Ceil(steady + backlog))
	say("Tasks arrive at about %.2f per hour, which keeps %.1f machines busy on average; clearing the pending tasks within the %d s target wait needs %.1f more.",
		rate*3600, steady, out.TargetWaitSeconds, backlog)
	if rec < spec.MinCapacity {
		say("That is below minCapacity, so the recommendation is minCapacity, %d.", spec.MinCapacity)
		rec = spec.MinCapacity
	}
	out.RecommendedCapacity = rec
	if rec > spec.MaxCapacity {
		say("The recommended %d machines exceed maxCapacity %d: raise maxCapacity or accept longer waits.", rec, spec.MaxCapacity)
	} else {
		say("Recommended capacity: %d machines.", rec)
	}
	return out
}

func ratioOf(spec client.PoolSpec) float64 {
	if spec.ScalingRatio == 0 {
		return 1
	}
	return spec.ScalingRatio
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (s *Server) sizing(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	ctx := r.Context()
	pool, err := s.store.GetPool(ctx, r.PathValue("poolId"))
	if err != nil {
		return storeError("pool", err)
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return storeError("machines", err)
	}
	sz, _, err := s.poolSizing(ctx, pool, machines)
	if err != nil {
		return storeError("task runs", err)
	}
	writeJSON(w, http.StatusOK, sz)
	return nil
}

// poolSizing sizes pool from every machine (others' are skipped), its
// runs in the sizing window and its source's pending count. pendingErr
// says why the pending count is unknown (taken as 0, and said in the
// reasoning); err is the store's.
func (s *Server) poolSizing(ctx context.Context, pool client.Pool, machines []*MachineRecord) (sz client.Sizing, pendingErr, err error) {
	runs, err := s.store.TaskRuns(ctx, pool.PoolID, s.now().Add(-s.cfg.SizingWindow))
	if err != nil {
		return client.Sizing{}, nil, err
	}
	pending, perr := s.demand.Pending(ctx, pool)
	return computeSizing(pool, machines, pending, perr, runs, s), perr, nil
}

// count renders n with the singular or plural words: "1 task is", "2 tasks are".
func count[N int | int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
