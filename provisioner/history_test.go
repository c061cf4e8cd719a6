package provisioner

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// historyEnv is a provisioner whose pool "win" has three enrolled
// machines, with a demand source that can be made to fail.
type historyEnv struct {
	*env
	failDemand atomic.Bool
	machines   map[string]*client.Client
}

func newHistoryEnv(t *testing.T, storeURL string, mod func(*Config)) *historyEnv {
	t.Helper()
	h := &historyEnv{machines: map[string]*client.Client{}}
	h.env = newEnv(t, storeURL, func(c *Config) {
		inner := c.Demand
		c.Demand = DemandFunc(func(ctx context.Context, p client.Pool) (int64, error) {
			if h.failDemand.Load() {
				return 0, errors.New("queue unreachable")
			}
			return inner.Pending(ctx, p)
		})
		if mod != nil {
			mod(c)
		}
	})
	h.pool("win", tcPool("proj/win", 3, 5, 0, "windows"))
	for _, host := range []string{"w1", "w2", "w3"} {
		reg, mc := h.enroll(winFacts(host))
		if reg.Assignment.PoolID != "win" {
			t.Fatalf("%s assigned to %q, want win", host, reg.Assignment.PoolID)
		}
		h.machines[reg.MachineID] = mc
	}
	return h
}

func (h *historyEnv) beat(id, state string, task *client.TaskRef) {
	h.t.Helper()
	if _, err := h.machines[id].Heartbeat(h.ctx(), id, 0, client.HeartbeatRequest{State: state, CurrentTask: task}); err != nil {
		h.t.Fatalf("heartbeat %s: %v", id, err)
	}
}

func (h *historyEnv) sample() {
	h.t.Helper()
	if err := h.srv.sampleHistory(h.ctx()); err != nil {
		h.t.Fatalf("sample: %v", err)
	}
}

// page fetches a dashboard page with the admin token.
func (h *historyEnv) page(path string) string {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
	}
	return string(body)
}

var seriesRE = regexp.MustCompile(`<path class="series" data-series="([^"]*)" data-values="([^"]*)" d="([^"]*)"`)

// drawnSeries returns, per series of the chart with id, its data-values
// (NaN for gaps) and the y coordinates of its path.
func drawnSeries(t *testing.T, body, id string) (ymax float64, values map[string][]float64, ys map[string][]float64) {
	t.Helper()
	start := strings.Index(body, `<svg id="`+id+`"`)
	if start < 0 {
		t.Fatalf("chart %s not on the page", id)
	}
	svg := body[start:]
	svg = svg[:strings.Index(svg, "</svg>")]
	m := regexp.MustCompile(`data-ymax="([^"]*)"`).FindStringSubmatch(svg)
	ymax, _ = strconv.ParseFloat(m[1], 64)
	values, ys = map[string][]float64{}, map[string][]float64{}
	for _, s := range seriesRE.FindAllStringSubmatch(svg, -1) {
		for _, v := range strings.Split(s[2], ",") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				f = math.NaN()
			}
			values[s[1]] = append(values[s[1]], f)
		}
		fields := strings.Fields(s[3])
		for i := 1; i < len(fields); i += 2 {
			y, _ := strconv.ParseFloat(fields[i], 64)
			ys[s[1]] = append(ys[s[1]], y)
		}
	}
	return ymax, values, ys
}

func TestPoolHistoryFromSamples(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHistoryEnv(t, k.url(t), nil)
			// 12:00 idle pool, 5 pending; 12:01 w1 busy, 9 pending;
			// 12:02 the queue cannot be asked; 12:06 (next bucket) w2
			// quarantined, 2 pending.
			h.demand.set("win", 5)
			h.beat("w1", client.StateIdle, nil)
			h.beat("w2", client.StateIdle, nil)
			h.beat("w3", client.StateIdle, nil)
			h.sample()
			h.clock.Add(time.Minute)
			h.demand.set("win", 9)
			h.beat("w1", client.StateBusy, &client.TaskRef{TaskID: "TaskA", RunID: 0})
			h.sample()
			h.clock.Add(time.Minute)
			h.failDemand.Store(true)
			h.beat("w1", client.StateBusy, &client.TaskRef{TaskID: "TaskB", RunID: 0}) // TaskA ran 60 s
			h.sample()
			h.failDemand.Store(false)
			h.clock.Add(4 * time.Minute)
			h.demand.set("win", 2)
			h.beat("w1", client.StateIdle, nil) // TaskB ran 240 s
			h.beat("w2", client.StateIdle, nil)
			h.beat("w3", client.StateIdle, nil)
			if _, err := h.admin.Quarantine(h.ctx(), "w2", "flaky GPU", h.clock.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			h.sample()

			hist, err := h.admin.PoolHistory(h.ctx(), "win", "24h")
			if err != nil {
				t.Fatal(err)
			}
			if hist.BucketSeconds != 300 {
				t.Fatalf("bucket %d s for 24h, want 300", hist.BucketSeconds)
			}
			// The points are checked against the stored samples, folded by hand.
			raw, err := h.srv.historyStore().PoolSamples(h.ctx(), "win", hist.From, hist.To.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != 4 {
				t.Fatalf("%d samples stored, want 4", len(raw))
			}
			if raw[2].Pending != nil || raw[1].Pending == nil || *raw[1].Pending != 9 || raw[1].Busy != 1 || raw[3].Quarantined != 1 {
				t.Fatalf("samples do not record what happened: %+v", raw)
			}
			if len(hist.Points) != 2 || hist.Points[0].Samples != 3 || hist.Points[1].Samples != 1 || hist.Points[0].PendingUnknown != 1 {
				t.Fatalf("points %+v, want buckets of 3 and 1 samples", hist.Points)
			}
			first, second := hist.Points[0], hist.Points[1]
			if *first.Pending != 9 || first.Busy != 1 || first.Assigned != 3 || first.Quarantined != 0 {
				t.Fatalf("first bucket %+v: want the highest of 5, 9 and unknown pending, 1 busy, 3 assigned", first)
			}
			if *second.Pending != 2 || second.Busy != 0 || second.Quarantined != 1 || second.Idle != 2 {
				t.Fatalf("second bucket %+v", second)
			}
			for _, p := range hist.Points {
				if p.Target < 3 || p.Recommended < 3 {
					t.Fatalf("target/recommended below minCapacity 3: %+v", p)
				}
			}
			// The runs: TaskA 60 s (1–2 min), TaskB 240 s (2–5 min).
			d := hist.Durations
			if d.Runs != 2 || d.MedianSeconds != 60 || d.P90Seconds != 240 {
				t.Fatalf("durations %+v", d)
			}
			counts := map[string]int{}
			for _, b := range d.Bins {
				counts[b.Label] = b.Runs
			}
			if counts["1–2 min"] != 1 || counts["2–5 min"] != 1 {
				t.Fatalf("histogram %+v", d.Bins)
			}

			// The page draws exactly these values.
			body := h.page("/dashboard/pools/win?range=24h")
			ymax, values, ys := drawnSeries(t, body, "chart-pending")
			if ymax != 10 || len(values["pending"]) != 2 || values["pending"][0] != 9 || values["pending"][1] != 2 {
				t.Fatalf("pending chart: ymax %v values %v", ymax, values)
			}
			for i, v := range values["pending"] {
				want := 26 + 164 - 164*v/ymax
				if math.Abs(ys["pending"][i]-want) > 0.1 {
					t.Fatalf("pending point %d drawn at y=%v, want %v for %v", i, ys["pending"][i], want, v)
				}
			}
			_, mvals, _ := drawnSeries(t, body, "chart-machines")
			if mvals["busy"][0] != 1 || mvals["quarantined"][1] != 1 || mvals["assigned"][0] != 3 {
				t.Fatalf("machines chart %v", mvals)
			}
			_, svals, _ := drawnSeries(t, body, "chart-sizing")
			if svals["recommended"][0] != float64(first.Recommended) || svals["target"][1] != float64(second.Target) {
				t.Fatalf("sizing chart %v, points %+v", svals, hist.Points)
			}
			for label, n := range counts {
				bar := `data-label="` + strings.ReplaceAll(strings.ReplaceAll(label, "<", "&lt;"), ">", "&gt;") + `" data-runs="` + strconv.Itoa(n) + `"`
				if !strings.Contains(body, bar) {
					t.Fatalf("histogram bar %s not drawn with %d runs", label, n)
				}
			}
			if !strings.Contains(body, "could not be read in 1 of 4 samples") {
				t.Fatalf("page does not say the pending count was unknown once")
			}
			// 7 days: one hourly bucket holds all four samples.
			week, err := h.admin.PoolHistory(h.ctx(), "win", "7d")
			if err != nil {
				t.Fatal(err)
			}
			if week.BucketSeconds != 3600 || len(week.Points) != 1 || week.Points[0].Samples != 4 || *week.Points[0].Pending != 9 || week.Points[0].Quarantined != 1 {
				t.Fatalf("7d history %+v", week)
			}
		})
	}
}

func TestHistoryRangeAndErrors(t *testing.T) {
	h := newHistoryEnv(t, sqliteURL(t), nil)
	for _, bad := range []string{"yesterday", "-1h", "32d", "0s"} {
		status, ce := h.raw("GET", "/api/v1/pools/win/history?range="+bad, testAdminToken, "")
		if status != http.StatusBadRequest || ce.Field != "range" {
			t.Fatalf("range=%s: %d %+v, want 400 naming range", bad, status, ce)
		}
	}
	if status, _ := h.raw("GET", "/api/v1/pools/nope/history", testAdminToken, ""); status != http.StatusNotFound {
		t.Fatalf("unknown pool: %d", status)
	}
	if status, _ := h.raw("GET", "/api/v1/machines/nope/timeline", testAdminToken, ""); status != http.StatusNotFound {
		t.Fatalf("unknown machine: %d", status)
	}
	if status, _ := h.raw("GET", "/api/v1/pools/win/history", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
	// An empty history is a page that says so, not an error.
	body := h.page("/dashboard/pools/win")
	if !strings.Contains(body, "No samples yet") || !strings.Contains(body, "no samples in this range") {
		t.Fatal("empty history page does not say there are no samples")
	}
}
