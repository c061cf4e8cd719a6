package benchcompare

// The central servers' rows: the bridge's and the provisioner's Go
// benchmarks run in the same `make bench-compare` (as `go test -bench`
// subprocesses), their metrics parsed from the standard benchmark output
// and set beside the anchor each has (a target, or BBB's single-threaded
// design for the bridge).

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// BenchResult is one line of `go test -bench` output: the benchmark's name
// (without the -GOMAXPROCS suffix), its iterations and its metrics by unit
// ("ns/op", "requests/s", …).
type BenchResult struct {
	Name       string
	Iterations int
	Metrics    map[string]float64
}

// ParseBenchOutput reads `go test -bench` output and returns its result
// lines by benchmark name; other lines (goos, PASS, logs) are skipped. A
// name seen twice keeps its last result.
func ParseBenchOutput(out string) map[string]BenchResult {
	res := map[string]BenchResult{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		r := BenchResult{Name: name, Iterations: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			r.Metrics[f[i+1]] = v
		}
		if ok {
			res[name] = r
		}
	}
	return res
}

// ServerRow is one figure of a central server against its anchor.
type ServerRow struct {
	Figure    string
	Benchmark string // name as ParseBenchOutput keys it
	Metric    string // the unit of the metric shown, e.g. "requests/s"
	Unit      string // as the table shows it
	// Scale multiplies the metric into Unit (1e-6 for ns/op shown in ms);
	// 0 means 1.
	Scale float64
	// Anchor is what the figure is compared with: a target ("≥ 1000") or
	// another row's figure (Baseline). AtLeast says the anchor is a
	// minimum (a rate) rather than a maximum (a time).
	Anchor  float64
	AtLeast bool
	// Baseline names another row (by Figure) whose value is the anchor:
	// the ratio to it is shown instead of a target.
	Baseline string
	Note     string
}

// ServerMarkdown renders the servers' table from results; a row whose
// benchmark or metric is missing says so.
func ServerMarkdown(rows []ServerRow, results map[string]BenchResult) string {
	value := func(r ServerRow) (float64, bool) {
		res, ok := results[r.Benchmark]
		if !ok {
			return math.NaN(), false
		}
		v, ok := res.Metrics[r.Metric]
		if r.Scale != 0 {
			v *= r.Scale
		}
		return v, ok
	}
	byFigure := map[string]ServerRow{}
	for _, r := range rows {
		byFigure[r.Figure] = r
	}
	var b strings.Builder
	b.WriteString("| figure | measured | anchor | verdict | benchmark, note |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		v, ok := value(r)
		measured, anchor, verdict := "not measured", "–", "–"
		if ok {
			measured = format(v) + " " + r.Unit
		}
		switch {
		case r.Baseline != "":
			base := byFigure[r.Baseline]
			anchor = "the row “" + r.Baseline + "”"
			if bv, bok := value(base); ok && bok && bv > 0 {
				verdict = format(v/bv) + "× of it"
			}
		case r.Anchor != 0:
			rel := "≤"
			if r.AtLeast {
				rel = "≥"
			}
			anchor = fmt.Sprintf("%s %s %s", rel, format(r.Anchor), r.Unit)
			if ok {
				met := v <= r.Anchor
				if r.AtLeast {
					met = v >= r.Anchor
				}
				verdict = map[bool]string{true: "met", false: "not met"}[met]
			}
		}
		note := "`" + r.Benchmark + "`"
		if r.Note != "" {
			note += "; " + r.Note
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Figure, measured, anchor, verdict, note)
	}
	return b.String()
}
