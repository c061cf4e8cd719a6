package provisioner

// A pool's history (sampled figures in buckets, and a histogram of its
// runs' durations) and a machine's timeline (states, runs, reboots), as
// the API answers them and the dashboard draws them.

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// maxHistoryRange bounds ?range=.
const maxHistoryRange = 31 * 24 * time.Hour

// maxPoints is about how many buckets a chart gets.
const maxPoints = 300

// bucketSizes are the bucket widths a chart may use, smallest first.
var bucketSizes = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour}

// parseRange reads ?range= ("24h", "7d", any Go duration; default 24 h).
func parseRange(r *http.Request) (time.Duration, *apiError) {
	v := r.URL.Query().Get("range")
	if v == "" {
		return 24 * time.Hour, nil
	}
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 || d > maxHistoryRange {
		return 0, &apiError{status: http.StatusBadRequest, code: "InvalidRequest", field: "range",
			msg: fmt.Sprintf("range: %q is not a span such as 24h or 7d (at most 31d)", v)}
	}
	return d, nil
}

// bucketFor picks the bucket width for a span: the smallest nice width
// that keeps the chart under maxPoints and is no finer than the samples.
func bucketFor(span, interval time.Duration) time.Duration {
	for _, b := range bucketSizes {
		if b >= interval && span/b <= maxPoints {
			return b
		}
	}
	return bucketSizes[len(bucketSizes)-1]
}

// bucketPoints folds samples into buckets aligned on multiples of bucket
// since the epoch; each figure is the bucket's highest.
func bucketPoints(samples []PoolSample, bucket time.Duration) []client.PoolPoint {
	out := []client.PoolPoint{}
	for _, s := range samples {
		at := s.At.Truncate(bucket)
		if len(out) == 0 || !out[len(out)-1].At.Equal(at) {
			out = append(out, client.PoolPoint{At: at})
		}
		p := &out[len(out)-1]
		p.Samples++
		if s.Pending == nil {
			p.PendingUnknown++
		}
		if s.Pending != nil && (p.Pending == nil || *s.Pending > *p.Pending) {
			v := *s.Pending
			p.Pending = &v
		}
		p.Assigned = max(p.Assigned, s.Assigned)
		p.Busy = max(p.Busy, s.Busy)
		p.Idle = max(p.Idle, s.Idle)
		p.Quarantined = max(p.Quarantined, s.Quarantined)
		p.Offline = max(p.Offline, s.Offline)
		p.Target = max(p.Target, s.Target)
		p.Recommended = max(p.Recommended, s.Recommended)
	}
	return out
}

// durationBins are the histogram's bars: widths a person reads at a
// glance rather than equal ones.
var durationBins = []struct {
	label    string
	min, max float64
}{
	{"< 30 s", 0, 30}, {"30 s–1 min", 30, 60}, {"1–2 min", 60, 120}, {"2–5 min", 120, 300},
	{"5–10 min", 300, 600}, {"10–20 min", 600, 1200}, {"20–30 min", 1200, 1800}, {"30–60 min", 1800, 3600},
	{"1–2 h", 3600, 7200}, {"2–4 h", 7200, 14400}, {"≥ 4 h", 14400, 0},
}

// durationHistogram counts runs per bin, with the median and 90th percentile.
func durationHistogram(runs []TaskRun) client.DurationHistogram {
	h := client.DurationHistogram{Runs: len(runs), Bins: make([]client.DurationBin, len(durationBins))}
	for i, b := range durationBins {
		h.Bins[i] = client.DurationBin{Label: b.label, MinSeconds: b.min, MaxSeconds: b.max}
	}
	durs := make([]float64, 0, len(runs))
	for _, r := range runs {
		d := r.Finished.Sub(r.Started).Seconds()
		durs = append(durs, d)
		for i, b := range durationBins {
			if d >= b.min && (b.max == 0 || d < b.max) {
				h.Bins[i].Runs++
				break
			}
		}
	}
	sort.Float64s(durs)
	h.MedianSeconds, h.P90Seconds = percentile(durs, 0.5), percentile(durs, 0.9)
	return h
}

func (s *Server) noHistory() *apiError {
	return errStatus(http.StatusNotImplemented, "NoHistory", "this provisioner's store keeps no history")
}

// poolHistory builds a pool's history over the span ending now.
func (s *Server) poolHistory(ctx context.Context, poolID string, span time.Duration) (*client.PoolHistory, *apiError) {
	hs := s.historyStore()
	if hs == nil {
		return nil, s.noHistory()
	}
	if _, err := s.store.GetPool(ctx, poolID); err != nil {
		return nil, storeError("pool", err)
	}
	to := s.now()
	from := to.Add(-span)
	bucket := bucketFor(span, s.cfg.HistoryInterval)
	samples, err := hs.PoolSamples(ctx, poolID, from, to.Add(time.Millisecond))
	if err != nil {
		return nil, storeError("pool history", err)
	}
	runs, err := s.store.TaskRuns(ctx, poolID, from)
	if err != nil {
		return nil, storeError("task runs", err)
	}
	return &client.PoolHistory{PoolID: poolID, From: from, To: to, BucketSeconds: int64(bucket / time.Second),
		Points: bucketPoints(samples, bucket), Durations: durationHistogram(runs)}, nil
}

// machineTimeline builds a machine's timeline over the span ending now.
func (s *Server) machineTimeline(ctx context.Context, machineID string, span time.Duration) (*client.MachineTimeline, *apiError) {
	hs := s.historyStore()
	if hs == nil {
		return nil, s.noHistory()
	}
	m, err := s.store.GetMachine(ctx, machineID)
	if err != nil {
		return nil, storeError("machine", err)
	}
	to := s.now()
	from := to.Add(-span)
	out := &client.MachineTimeline{MachineID: machineID, From: from, To: to, States: []client.StateSpan{}, Runs: []client.RunSpan{}, Reboots: []client.RebootMark{}}
	states, err := hs.MachineStates(ctx, machineID, from, to.Add(time.Millisecond))
	if err != nil {
		return nil, storeError("machine history", err)
	}
	for i, st := range states {
		start, end := st.At, to
		if i+1 < len(states) {
			end = states[i+1].At
		}
		if start.Before(from) {
			start = from
		}
		if !end.After(start) {
			continue
		}
		out.States = append(out.States, client.StateSpan{From: start, To: end, State: st.State, Detail: st.Detail})
	}
	runs, err := hs.MachineRuns(ctx, machineID, from, to.Add(time.Millisecond))
	if err != nil {
		return nil, storeError("machine runs", err)
	}
	for _, r := range runs {
		out.Runs = append(out.Runs, client.RunSpan{TaskID: r.TaskID, RunID: r.RunID, Pool: r.PoolID, Started: r.Started, Finished: r.Finished})
	}
	reports, err := hs.MachineRunReports(ctx, machineID, from, to.Add(time.Millisecond))
	if err != nil {
		return nil, storeError("machine run reports", err)
	}
	out.Runs = mergeRunReports(out.Runs, reports)
	if m.CurrentTask != nil && m.TaskStarted != nil {
		out.Runs = append(out.Runs, client.RunSpan{TaskID: m.CurrentTask.TaskID, RunID: m.CurrentTask.RunID, Pool: m.PoolID,
			Started: *m.TaskStarted, Finished: to, Result: "running"})
	}
	// Each boot registers once, and reboots are recorded as actions; a
	// machine has far fewer than this many actions in a week.
	actions, err := s.store.Actions(ctx, machineID, 2000)
	if err != nil {
		return nil, storeError("machine actions", err)
	}
	for i := len(actions) - 1; i >= 0; i-- {
		a := actions[i]
		if a.At.Before(from) || a.At.After(to) {
			continue
		}
		switch a.Action {
		case "register":
			out.Reboots = append(out.Reboots, client.RebootMark{At: a.At, Kind: "boot", Who: a.Who, Why: a.Why})
		case "reboot":
			out.Reboots = append(out.Reboots, client.RebootMark{At: a.At, Kind: "requested", Who: a.Who, Why: a.Why})
		}
	}
	return out, nil
}

func (s *Server) getPoolHistory(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	span, aerr := parseRange(r)
	if aerr != nil {
		return aerr
	}
	h, aerr := s.poolHistory(r.Context(), r.PathValue("poolId"), span)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) getMachineTimeline(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	span, aerr := parseRange(r)
	if aerr != nil {
		return aerr
	}
	t, aerr := s.machineTimeline(r.Context(), r.PathValue("id"), span)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
