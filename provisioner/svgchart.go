package provisioner

// Server-rendered SVG charts for the dashboard: a line chart over time, a
// bar histogram and a timeline of lanes. They are inline SVG in the page,
// so they need no script, no external asset and no network; every text
// is escaped. Each series carries its values in data-values, so tests
// (and anyone reading the page) can check what is drawn against the data.

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	chartW              = 760
	chartMarginL        = 46
	chartMarginR        = 12
	chartMarginT        = 26
	chartMarginB        = 30
	chartPlotW          = chartW - chartMarginL - chartMarginR
	timelineLaneH       = 22
	timelineLabelW      = 70
	timelinePlotW       = chartW - timelineLabelW - chartMarginR
	histogramBarsHeight = 150
	// sparsePoints: a chart with at most this many points marks each.
	sparsePoints = 60
)

// chartSeries is one line: a value per x, NaN where there is none.
type chartSeries struct {
	Name, Color string
	Values      []float64
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// timeTicks picks tick times between from and to at a step that gives
// at most 8 labels.
func timeTicks(from, to time.Time) (ticks []time.Time, layout string) {
	span := to.Sub(from)
	steps := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	layout = "15:04"
	if step >= 24*time.Hour {
		layout = "Mon 02 Jan"
	}
	for t := from.Truncate(step).Add(step); t.Before(to); t = t.Add(step) {
		ticks = append(ticks, t)
	}
	return ticks, layout
}

// xAt maps t into [x0, x0+w] for the range from..to.
func xAt(t, from, to time.Time, x0, w float64) float64 {
	span := to.Sub(from).Seconds()
	if span <= 0 {
		return x0
	}
	return x0 + w*t.Sub(from).Seconds()/span
}

func timeAxis(b *strings.Builder, from, to time.Time, x0, w, yTop, yBottom float64) {
	ticks, layout := timeTicks(from, to)
	for _, t := range ticks {
		x := xAt(t, from, to, x0, w)
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#eee"/>`, f1(x), f1(yTop), f1(x), f1(yBottom))
		fmt.Fprintf(b, `<text x="%s" y="%s" font-size="11" text-anchor="middle" fill="#666">%s</text>`, f1(x), f1(yBottom+14), esc(t.UTC().Format(layout)))
	}
}

// lineChart draws series over xs (bucket starts) between from and to.
func lineChart(id, title string, from, to time.Time, xs []time.Time, series []chartSeries) template.HTML {
	const h = 220
	plotH := float64(h - chartMarginT - chartMarginB)
	top := float64(chartMarginT)
	ymax := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	ymax = niceCeil(ymax)
	yAt := func(v float64) float64 { return top + plotH - plotH*v/ymax }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s" data-ymax="%s">`,
		esc(id), chartW, h, chartW, h, esc(title), f1(ymax))
	fmt.Fprintf(&b, `<text x="%d" y="15" font-size="13" font-weight="600">%s</text>`, chartMarginL, esc(title))
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := yAt(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#eee"/>`, chartMarginL, f1(y), chartW-chartMarginR, f1(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" font-size="11" text-anchor="end" fill="#666">%s</text>`, chartMarginL-4, f1(y+4), strconv.FormatFloat(v, 'g', 4, 64))
	}
	timeAxis(&b, from, to, chartMarginL, chartPlotW, top, top+plotH)
	fmt.Fprintf(&b, `<rect x="%d" y="%s" width="%d" height="%s" fill="none" stroke="#ccc"/>`, chartMarginL, f1(top), chartPlotW, f1(plotH))
	lx := float64(chartMarginL + 160)
	for _, s := range series {
		var d, vals strings.Builder
		pen := false
		for i, v := range s.Values {
			if i > 0 {
				vals.WriteByte(',')
			}
			if math.IsNaN(v) {
				pen = false
				continue
			}
			vals.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s ", cmd, f1(xAt(xs[i], from, to, chartMarginL, chartPlotW)), f1(yAt(v)))
			pen = true
		}
		fmt.Fprintf(&b, `<path class="series" data-series="%s" data-values="%s" d="%s" fill="none" stroke="%s" stroke-width="1.6"><title>%s</title></path>`,
			esc(s.Name), vals.String(), strings.TrimSpace(d.String()), s.Color, esc(s.Name))
		if len(xs) <= sparsePoints {
			// Few points (a young history): mark each, since a lone
			// point draws no line.
			for i, v := range s.Values {
				if !math.IsNaN(v) {
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s %s: %s</title></circle>`,
						f1(xAt(xs[i], from, to, chartMarginL, chartPlotW)), f1(yAt(v)), s.Color, esc(s.Name), xs[i].UTC().Format("15:04"), strconv.FormatFloat(v, 'g', -1, 64))
				}
			}
		}
		fmt.Fprintf(&b, `<rect x="%s" y="7" width="10" height="10" fill="%s"/><text x="%s" y="16" font-size="11">%s</text>`, f1(lx), s.Color, f1(lx+13), esc(s.Name))
		lx += 13 + 7*float64(len(s.Name)) + 14
	}
	if len(xs) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%s" font-size="12" text-anchor="middle" fill="#80868b">no samples in this range</text>`, chartMarginL+chartPlotW/2, f1(top+plotH/2))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// histogramChart draws one bar per bin with its count above it.
func histogramChart(id, title string, labels []string, counts []int) template.HTML {
	const h = histogramBarsHeight + 60
	top := 26.0
	maxC := 0
	for _, c := range counts {
		maxC = max(maxC, c)
	}
	ymax := niceCeil(float64(maxC))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		esc(id), chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="15" font-size="13" font-weight="600">%s</text>`, chartMarginL, esc(title))
	n := max(len(counts), 1)
	slot := float64(chartPlotW) / float64(n)
	for i, c := range counts {
		bh := float64(histogramBarsHeight) * float64(c) / ymax
		x := float64(chartMarginL) + float64(i)*slot
		y := top + float64(histogramBarsHeight) - bh
		fmt.Fprintf(&b, `<rect class="bar" data-label="%s" data-runs="%d" x="%s" y="%s" width="%s" height="%s" fill="#1e88e5"><title>%s: %d runs</title></rect>`,
			esc(labels[i]), c, f1(x+2), f1(y), f1(slot-4), f1(bh), esc(labels[i]), c)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="11" text-anchor="middle">%d</text>`, f1(x+slot/2), f1(y-3), c)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="10" text-anchor="middle" fill="#666">%s</text>`, f1(x+slot/2), f1(top+histogramBarsHeight+14), esc(labels[i]))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#999"/>`, chartMarginL, f1(top+histogramBarsHeight), chartW-chartMarginR, f1(top+histogramBarsHeight))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// timelineBox is one coloured span (or, with From == To, a mark) in a lane.
type timelineBox struct {
	From, To      time.Time
	Color, Class  string
	Title, Detail string
}

// timelineLane is one row of a timeline.
type timelineLane struct {
	Name  string
	Boxes []timelineBox
}

// timelineChart draws lanes of spans and marks between from and to.
func timelineChart(id, title string, from, to time.Time, lanes []timelineLane) template.HTML {
	top := 26.0
	h := int(top) + len(lanes)*(timelineLaneH+6) + 24
	x0 := float64(timelineLabelW)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		esc(id), chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="4" y="15" font-size="13" font-weight="600">%s</text>`, esc(title))
	bottom := top + float64(len(lanes)*(timelineLaneH+6))
	timeAxis(&b, from, to, x0, timelinePlotW, top, bottom)
	for i, lane := range lanes {
		y := top + float64(i*(timelineLaneH+6))
		fmt.Fprintf(&b, `<text x="4" y="%s" font-size="11" fill="#444">%s</text>`, f1(y+15), esc(lane.Name))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%d" height="%d" fill="#fafafa" stroke="#eee"/>`, f1(x0), f1(y), timelinePlotW, timelineLaneH)
		for _, bx := range lane.Boxes {
			x1 := xAt(bx.From, from, to, x0, timelinePlotW)
			tip := bx.Title
			if bx.Detail != "" {
				tip += "\n" + bx.Detail
			}
			if bx.To.Equal(bx.From) {
				fmt.Fprintf(&b, `<path class="%s" d="M%s %s l-5 -6 h10 z M%s %s v%d" stroke="%s" fill="%s"><title>%s</title></path>`,
					esc(bx.Class), f1(x1), f1(y+6), f1(x1), f1(y), timelineLaneH, bx.Color, bx.Color, esc(tip))
				continue
			}
			w := math.Max(1, xAt(bx.To, from, to, x0, timelinePlotW)-x1)
			fmt.Fprintf(&b, `<rect class="%s" x="%s" y="%s" width="%s" height="%d" fill="%s"><title>%s</title></rect>`,
				esc(bx.Class), f1(x1), f1(y+2), f1(w), timelineLaneH-4, bx.Color, esc(tip))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
