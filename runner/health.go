package runner

// Built-in health checks, run before every claim and every checks.interval,
// each with hysteresis so one bad sample neither quarantines a machine nor
// one good sample releases it. The hysteresis smooths a machine that was
// healthy: until a check has passed once since the runner started it is
// pending, and no claim is made while any check is (see firstpass.go).
//
//	pending ──pass──▶ passing            (failures counted, never tripped)
//	passing ──fail──▶ failing (count) ──tripAfter in a row──▶ tripped
//	tripped ──pass──▶ clearing (count) ──clearAfter in a row──▶ passing
//	a probe that cannot measure (queue unreachable) changes nothing

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// CheckStatus is the latest result of one check.
type CheckStatus struct {
	// Name is disk, memory, cpu, clock, leftovers, uptime or check:<file>.
	Name string `json:"name"`
	// Kind is builtin or script.
	Kind string `json:"kind"`
	// OK is whether the latest sample passed.
	OK bool `json:"ok"`
	// Tripped is set once TripAfter samples failed in a row, until
	// ClearAfter pass in a row; a check that has not passed since the
	// runner started is pending instead, and never trips.
	Tripped bool `json:"tripped"`
	// PassedSinceStart is whether a sample passed since the runner
	// started; no claim is made until every check's has.
	PassedSinceStart bool `json:"passedSinceStart"`
	// Value is what was measured, Threshold what it must meet.
	Value     string `json:"value"`
	Threshold string `json:"threshold"`
	// Message explains a failure or an unmeasurable sample.
	Message        string    `json:"message,omitempty"`
	FailuresInARow int       `json:"failuresInARow"`
	PassesInARow   int       `json:"passesInARow"`
	CheckedAt      time.Time `json:"checkedAt"`
}

// Probes measure the machine; tests replace them to drive thresholds.
// A nil field is the real measurement.
type Probes struct {
	// DiskFree is the free bytes of the volume holding path.
	DiskFree func(path string) (uint64, error)
	// MemAvailable is the available memory in bytes.
	MemAvailable func() (uint64, error)
	// CPUPercent is the machine's CPU use since the previous call.
	CPUPercent func() (float64, error)
	// Uptime is the time since the machine booted.
	Uptime func() (time.Duration, error)
	// QueueTime is the queue's clock, from its Date header.
	QueueTime func(ctx context.Context) (time.Time, error)
}

func (p *Probes) fill(rootURL func() string) {
	if p.DiskFree == nil {
		p.DiskFree = func(path string) (uint64, error) {
			u, err := disk.Usage(path)
			if err != nil {
				return 0, fmt.Errorf("disk usage of %s: %w", path, err)
			}
			return u.Free, nil
		}
	}
	if p.MemAvailable == nil {
		p.MemAvailable = func() (uint64, error) {
			v, err := mem.VirtualMemory()
			if err != nil {
				return 0, fmt.Errorf("memory: %w", err)
			}
			return v.Available, nil
		}
	}
	if p.CPUPercent == nil {
		p.CPUPercent = func() (float64, error) {
			v, err := cpu.Percent(0, false)
			if err != nil || len(v) == 0 {
				return 0, fmt.Errorf("cpu use: %v", err)
			}
			return v[0], nil
		}
	}
	if p.Uptime == nil {
		p.Uptime = func() (time.Duration, error) {
			s, err := host.Uptime()
			if err != nil {
				return 0, fmt.Errorf("uptime: %w", err)
			}
			return time.Duration(s) * time.Second, nil
		}
	}
	if p.QueueTime == nil {
		p.QueueTime = func(ctx context.Context) (time.Time, error) { return queueDate(ctx, rootURL()) }
	}
}

// queueDate reads the Date header of the queue's unauthenticated ping.
func queueDate(ctx context.Context, rootURL string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimRight(rootURL, "/") + "/api/queue/v1/ping"
	var last error
	for try := 0; try < 3; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, fmt.Errorf("clock check: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			d, perr := http.ParseTime(resp.Header.Get("Date"))
			if perr != nil {
				return time.Time{}, fmt.Errorf("clock check: queue's Date header %q: %w", resp.Header.Get("Date"), perr)
			}
			return d, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("clock check: %w", last)
		case <-time.After(time.Duration(try+1) * 200 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("clock check: %w", last)
}

// sample is one measurement of a built-in check.
type sample struct {
	name, value, threshold, message string
	ok                              bool
	// unknown: nothing could be measured; hysteresis counters stay.
	unknown bool
}

const mb = 1 << 20

// measure runs the built-in probes (the clock only when due).
func (r *Runner) measure(ctx context.Context, clockDue bool, running int) []sample {
	c := r.cfg.Checks
	var out []sample
	if free, err := r.probes.DiskFree(r.agentCfg.Load().TasksDir); err != nil {
		out = append(out, sample{name: "disk", unknown: true, message: err.Error(), threshold: fmt.Sprintf(">= %d MB free", c.DiskFreeMinMB)})
	} else {
		out = append(out, sample{name: "disk", ok: free >= uint64(c.DiskFreeMinMB)*mb, value: fmt.Sprintf("%d MB free on %s", free/mb, r.agentCfg.Load().TasksDir), threshold: fmt.Sprintf(">= %d MB free", c.DiskFreeMinMB)})
	}
	if avail, err := r.probes.MemAvailable(); err != nil {
		out = append(out, sample{name: "memory", unknown: true, message: err.Error(), threshold: fmt.Sprintf(">= %d MB available", c.MemFreeMinMB)})
	} else {
		out = append(out, sample{name: "memory", ok: avail >= uint64(c.MemFreeMinMB)*mb, value: fmt.Sprintf("%d MB available", avail/mb), threshold: fmt.Sprintf(">= %d MB available", c.MemFreeMinMB)})
	}
	if pct, err := r.probes.CPUPercent(); err != nil {
		out = append(out, sample{name: "cpu", unknown: true, message: err.Error(), threshold: fmt.Sprintf("<= %g%% while idle", c.CPUMaxPercent)})
	} else {
		// A task is allowed to use every core.
		s := sample{name: "cpu", ok: running > 0 || pct <= c.CPUMaxPercent, value: fmt.Sprintf("%.0f%%", pct), threshold: fmt.Sprintf("<= %g%% while idle", c.CPUMaxPercent)}
		if running > 0 {
			s.message = "not judged while a task runs"
		}
		out = append(out, s)
	}
	if clockDue {
		qt, err := r.probes.QueueTime(ctx)
		th := fmt.Sprintf("|skew| <= %s", c.MaxClockSkew.Duration)
		if err != nil {
			out = append(out, sample{name: "clock", unknown: true, message: err.Error(), threshold: th})
		} else {
			// The Date header has whole seconds.
			skew := r.now().Sub(qt).Truncate(time.Second)
			out = append(out, sample{name: "clock", ok: math.Abs(float64(skew)) <= float64(c.MaxClockSkew.Duration+time.Second), value: fmt.Sprintf("%s from the queue", skew), threshold: th})
		}
	}
	if *c.KillLeftovers {
		killed, failed, err := killLeftovers(r.agentCfg.Load().TasksDir, r.runningTaskIDs())
		s := sample{name: "leftovers", ok: err == nil && failed == 0, threshold: "none left running"}
		r.mu.Lock()
		r.st.LeftoversKilled += killed
		total := r.st.LeftoversKilled
		r.mu.Unlock()
		s.value = fmt.Sprintf("%d killed now, %d in all", killed, total)
		if killed > 0 {
			r.log.Warn("killed processes left behind by earlier tasks", "count", killed)
			r.metrics.leftovers.Add(float64(killed))
		}
		if err != nil {
			s.message = err.Error()
		} else if failed > 0 {
			s.message = fmt.Sprintf("%d could not be killed", failed)
		}
		out = append(out, s)
	}
	if up, err := r.probes.Uptime(); err == nil {
		th := "no maximum"
		if m := r.cfg.Reboot.MaxUptime.Duration; m > 0 {
			th = fmt.Sprintf("reboot past %s", m)
		}
		// Uptime never trips health: the reboot policy acts on it.
		out = append(out, sample{name: "uptime", ok: true, value: up.Truncate(time.Second).String(), threshold: th})
	}
	return out
}

// applySamples updates the checks' hysteresis. Caller holds r.mu.
func (r *Runner) applySamples(samples []sample) {
	now := r.now()
	for _, s := range samples {
		cs := r.checkStatus(s.name, "builtin")
		cs.Threshold = s.threshold
		cs.CheckedAt = now
		cs.Message = s.message
		if s.unknown {
			continue
		}
		cs.Value, cs.OK = s.value, s.ok
		if s.ok {
			cs.PassedSinceStart = true
			cs.FailuresInARow = 0
			cs.PassesInARow++
			if cs.Tripped && cs.PassesInARow >= r.cfg.Checks.ClearAfter {
				cs.Tripped = false
				r.log.Info("health check cleared", "check", cs.Name, "value", cs.Value)
			}
		} else {
			cs.PassesInARow = 0
			cs.FailuresInARow++
			if cs.PassedSinceStart && !cs.Tripped && cs.FailuresInARow >= r.cfg.Checks.TripAfter {
				cs.Tripped = true
				r.log.Warn("health check tripped", "check", cs.Name, "value", cs.Value, "threshold", cs.Threshold)
			}
		}
	}
}

// checkStatus finds or adds a check's entry. Caller holds r.mu.
func (r *Runner) checkStatus(name, kind string) *CheckStatus {
	if cs := r.findCheck(name); cs != nil {
		return cs
	}
	r.st.Checks = append(r.st.Checks, CheckStatus{Name: name, Kind: kind})
	return &r.st.Checks[len(r.st.Checks)-1]
}
