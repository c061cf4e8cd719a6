package provisioner

// The dashboard's system map (/dashboard/map): the components of
// GET /api/v1/system drawn as boxes coloured by health, one row per kind,
// and a table with each one's figures and last error.

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

// mapView is the data of the system map page.
type mapView struct {
	chrome
	Map     *client.SystemMap
	Diagram template.HTML
	// Bad counts components not ok.
	Bad int
}

// healthColors are the fill and stroke of a component's box.
var healthColors = map[string][2]string{
	client.HealthOK: {"#e6f4ea", "#146c2e"}, client.HealthDegraded: {"#fef7e0", "#b06000"},
	client.HealthDown: {"#fdecea", "#b3261e"}, client.HealthUnknown: {"#f1f3f4", "#80868b"},
}

// mapRows are the diagram's rows, top to bottom.
var mapRows = []struct{ kind, label string }{
	{"queue", "Taskcluster"}, {"pulse", "Pulse"}, {"bridge", "bridges"}, {"replica", "provisioner"}, {"database", "databases"},
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// mapDiagram draws one row of boxes per kind of component.
func mapDiagram(cs []client.Component) template.HTML {
	const boxW, boxH, gap, labelW, rowH = 200, 50, 12, 96, 66
	perRow := map[string][]client.Component{}
	width := labelW + boxW
	for _, c := range cs {
		perRow[c.Kind] = append(perRow[c.Kind], c)
		width = max(width, labelW+len(perRow[c.Kind])*(boxW+gap))
	}
	var rows []string
	for _, r := range mapRows {
		if len(perRow[r.kind]) > 0 {
			rows = append(rows, r.kind)
		}
	}
	h := len(rows)*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="system-map" class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="system map">`, width, h, width, h)
	for i, kind := range rows {
		y := 6 + i*rowH
		label := kind
		for _, r := range mapRows {
			if r.kind == kind {
				label = r.label
			}
		}
		fmt.Fprintf(&b, `<text x="4" y="%d" font-size="12" fill="#5f6368">%s</text>`, y+boxH/2+4, esc(label))
		for j, c := range perRow[kind] {
			x := labelW + j*(boxW+gap)
			col, ok := healthColors[c.Health]
			if !ok {
				col = healthColors[client.HealthUnknown]
			}
			tip := c.Name + ": " + c.Health + " — " + c.Summary
			if c.LastError != "" {
				tip += "\nlast error: " + c.LastError
			}
			fmt.Fprintf(&b, `<g class="component" data-kind="%s" data-health="%s"><title>%s</title>`, esc(c.Kind), esc(c.Health), esc(tip))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="%s" stroke-width="1.5"/>`, x, y, boxW, boxH, col[0], col[1])
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" font-weight="600">%s</text>`, x+8, y+18, esc(clip(c.Name, 28)))
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, x+8, y+36, col[1], esc(clip(c.Health+" · "+c.Summary, 32)))
			b.WriteString(`</g>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// dashboardMap probes every component and draws the map.
func (s *Server) dashboardMap(r *http.Request, c chrome) (string, any, *apiError) {
	c.Title, c.Refresh = "system map", true
	m := s.systemMap(r.Context())
	v := mapView{chrome: c, Map: m, Diagram: mapDiagram(m.Components)}
	for _, comp := range m.Components {
		if comp.Health != client.HealthOK {
			v.Bad++
		}
	}
	return "map", v, nil
}
