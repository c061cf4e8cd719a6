package provisioner

// The dashboard's history pages: a pool's charts (pending, machines,
// sizing, durations) and a machine's timeline (states, runs, reboots),
// drawn from the same data as GET /api/v1/pools/{poolId}/history and
// GET /api/v1/machines/{id}/timeline.

import (
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// rangeLink is one of the page's span choices.
type rangeLink struct {
	Label, Href string
	Current     bool
}

// poolHistoryView is the data of a pool's history page.
type poolHistoryView struct {
	chrome
	PoolID                               string
	Range                                string
	Ranges                               []rangeLink
	History                              *client.PoolHistory
	Pending, Machines, Sizing, Durations template.HTML
	// PendingUnknown counts samples whose pending count could not be
	// read, of Samples.
	PendingUnknown, Samples int
}

// machineHistoryView is the data of a machine's timeline page.
type machineHistoryView struct {
	chrome
	MachineID string
	Href      string
	Range     string
	Ranges    []rangeLink
	Timeline  *client.MachineTimeline
	Chart     template.HTML
	Legend    []legendItem
}

// legendItem explains one colour of the timeline.
type legendItem struct{ Name, Color string }

// stateColors and resultColors are the timeline's palette.
var stateColors = map[string]string{
	client.StateIdle: "#7cb342", client.StateBusy: "#1e88e5", "quarantined": "#e53935", "offline": "#9e9e9e",
	client.StateDraining: "#ffb300", client.StateDrained: "#fb8c00", client.StateStarting: "#8e24aa", client.StateRebooting: "#6a1b9a",
}

var resultColors = map[string]string{
	"completed": "#43a047", "failed": "#e53935", "exception": "#fb8c00", "running": "#1e88e5", "": "#90a4ae",
}

func colorOf(m map[string]string, k string) string {
	if c, ok := m[k]; ok {
		return c
	}
	return "#b0bec5"
}

func rangeLinks(base, current string) []rangeLink {
	var out []rangeLink
	for _, r := range []string{"24h", "7d"} {
		out = append(out, rangeLink{Label: r, Href: base + "?range=" + r, Current: r == current})
	}
	return out
}

func rangeName(r *http.Request) string {
	if v := r.URL.Query().Get("range"); v != "" {
		return v
	}
	return "24h"
}

// dashboardPoolHistory is a pool's charts.
func (s *Server) dashboardPoolHistory(r *http.Request, c chrome) (string, any, *apiError) {
	span, aerr := parseRange(r)
	if aerr != nil {
		return "", nil, aerr
	}
	poolID := r.PathValue("poolId")
	h, aerr := s.poolHistory(r.Context(), poolID, span)
	if aerr != nil {
		return "", nil, aerr
	}
	c.Title, c.Refresh = "pool "+poolID+" · history", true
	v := poolHistoryView{chrome: c, PoolID: poolID, Range: rangeName(r), History: h}
	v.Ranges = rangeLinks("/dashboard/pools/"+url.PathEscape(poolID), v.Range)
	xs := make([]time.Time, len(h.Points))
	series := func(name, color string, f func(client.PoolPoint) float64) chartSeries {
		vals := make([]float64, len(h.Points))
		for i, p := range h.Points {
			vals[i] = f(p)
		}
		return chartSeries{Name: name, Color: color, Values: vals}
	}
	for i, p := range h.Points {
		xs[i] = p.At
		v.PendingUnknown += p.PendingUnknown
		v.Samples += p.Samples
	}
	pending := series("pending", "#e53935", func(p client.PoolPoint) float64 {
		if p.Pending == nil {
			return math.NaN()
		}
		return float64(*p.Pending)
	})
	v.Pending = lineChart("chart-pending", "Pending tasks", h.From, h.To, xs, []chartSeries{pending})
	v.Machines = lineChart("chart-machines", "Machines", h.From, h.To, xs, []chartSeries{
		series("assigned", "#5f6368", func(p client.PoolPoint) float64 { return float64(p.Assigned) }),
		series("busy", "#1e88e5", func(p client.PoolPoint) float64 { return float64(p.Busy) }),
		series("quarantined", "#e53935", func(p client.PoolPoint) float64 { return float64(p.Quarantined) }),
		series("offline", "#9e9e9e", func(p client.PoolPoint) float64 { return float64(p.Offline) }),
	})
	v.Sizing = lineChart("chart-sizing", "Sizing", h.From, h.To, xs, []chartSeries{
		series("assigned", "#5f6368", func(p client.PoolPoint) float64 { return float64(p.Assigned) }),
		series("target", "#8e24aa", func(p client.PoolPoint) float64 { return float64(p.Target) }),
		series("recommended", "#fb8c00", func(p client.PoolPoint) float64 { return float64(p.Recommended) }),
	})
	labels := make([]string, len(h.Durations.Bins))
	counts := make([]int, len(h.Durations.Bins))
	for i, b := range h.Durations.Bins {
		labels[i], counts[i] = b.Label, b.Runs
	}
	v.Durations = histogramChart("chart-durations", "Task durations", labels, counts)
	return "poolHistory", v, nil
}

// dashboardMachineHistory is a machine's timeline.
func (s *Server) dashboardMachineHistory(r *http.Request, c chrome) (string, any, *apiError) {
	span, aerr := parseRange(r)
	if aerr != nil {
		return "", nil, aerr
	}
	id := r.PathValue("id")
	t, aerr := s.machineTimeline(r.Context(), id, span)
	if aerr != nil {
		return "", nil, aerr
	}
	c.Title, c.Refresh = "machine "+id+" · timeline", true
	v := machineHistoryView{chrome: c, MachineID: id, Href: "/dashboard/machines/" + url.PathEscape(id), Range: rangeName(r), Timeline: t}
	v.Ranges = rangeLinks(v.Href+"/history", v.Range)
	var states, runs, reboots timelineLane
	states.Name, runs.Name, reboots.Name = "state", "tasks", "reboots"
	for _, st := range t.States {
		states.Boxes = append(states.Boxes, timelineBox{From: st.From, To: st.To, Color: colorOf(stateColors, st.State), Class: "state state-" + st.State,
			Title: st.State + " " + stamp(st.From) + " – " + stamp(st.To), Detail: st.Detail})
	}
	for _, rs := range t.Runs {
		result := rs.Result
		label := result
		if label == "" {
			label = "result not reported"
		}
		if rs.Reason != "" {
			label += " (" + rs.Reason + ")"
		}
		runs.Boxes = append(runs.Boxes, timelineBox{From: rs.Started, To: rs.Finished, Color: colorOf(resultColors, result), Class: "run result-" + orDefault(result, "unreported"),
			Title: rs.TaskID + "/" + strconv.Itoa(rs.RunID) + ": " + label, Detail: stamp(rs.Started) + " – " + stamp(rs.Finished) + " (" + rs.Finished.Sub(rs.Started).Round(time.Second).String() + ")"})
	}
	for _, rb := range t.Reboots {
		color := "#6a1b9a"
		what := "booted (registered)"
		if rb.Kind == "requested" {
			color, what = "#212121", "reboot requested"
		}
		reboots.Boxes = append(reboots.Boxes, timelineBox{From: rb.At, To: rb.At, Color: color, Class: "reboot reboot-" + rb.Kind,
			Title: what + " at " + stamp(rb.At), Detail: rb.Who + ": " + rb.Why})
	}
	v.Chart = timelineChart("chart-timeline", "Timeline", t.From, t.To, []timelineLane{states, runs, reboots})
	for _, st := range []string{client.StateIdle, client.StateBusy, "quarantined", "offline", client.StateDraining, client.StateDrained, client.StateStarting, client.StateRebooting} {
		v.Legend = append(v.Legend, legendItem{Name: st, Color: stateColors[st]})
	}
	for _, res := range []string{"completed", "failed", "exception", "running"} {
		v.Legend = append(v.Legend, legendItem{Name: "task " + res, Color: resultColors[res]})
	}
	v.Legend = append(v.Legend, legendItem{Name: "task, result not reported", Color: resultColors[""]})
	return "machineHistory", v, nil
}
