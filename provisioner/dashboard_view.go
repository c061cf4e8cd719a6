package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// indexView is the data of the dashboard's main page.
type indexView struct {
	chrome
	// Return is where an action's form sends the browser back to.
	Return   string
	PoolIDs  []string // the pools machines can be moved to
	Pool     string   // the ?pool= filter of the machines table
	Pools    []poolView
	Machines []machineView
	Totals   totalsView
}

// totalsView counts what the page shows.
type totalsView struct {
	Pools, Machines, Online, Working, Quarantined, Unassigned int
}

// poolView is one pool's row: its definition and its sizing.
type poolView struct {
	ID, Description, Source, Queue string
	Builders                       []string
	MachinesHref                   string
	Selected                       bool
	Sizing                         client.Sizing
	PendingErr                     string
	AboveMax                       bool
}

// machineView is one machine as the pages show it.
type machineView struct {
	ID, Href, Hostname, Platform string
	Pool, PoolHref, MovingTo     string
	State, Class                 string
	Online, Draining             bool
	// DrainTag marks a drain the machine has not reported yet (its state
	// is not draining or drained).
	DrainTag                string
	Work, WorkTask, WorkFor string
	// TaskHref is the Taskcluster UI's page of the current task.
	TaskHref               string
	HealthOK               bool
	Failing                []string
	Quarantine             string
	Heartbeat, HeartbeatAt string
}

// machineDetailView is the data of one machine's page.
type machineDetailView struct {
	chrome
	Return  string
	PoolIDs []string
	machineView
	Facts    [][2]string
	Health   []client.HealthResult
	Counters [][2]string
	Times    [][2]string
	Actions  []actionView
	Canary   *canaryView
}

// actionView is one recorded action.
type actionView struct {
	At, Action, Who, Why, Detail string
}

// dashboardIndex is the main page: every pool with its sizing, and the
// machines (of one pool with ?pool=).
func (s *Server) dashboardIndex(r *http.Request, c chrome) (string, any, *apiError) {
	ctx := r.Context()
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return "", nil, storeError("list pools", err)
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return "", nil, storeError("list machines", err)
	}
	now := s.now()
	c.Title, c.Refresh = "labrunner provisioner", true
	v := indexView{chrome: c, Return: r.URL.RequestURI(), Pool: r.URL.Query().Get("pool")}
	sizes, aerr := s.sizeAll(ctx, pools, machines)
	if aerr != nil {
		return "", nil, aerr
	}
	for i, p := range pools {
		pv := poolView{ID: p.PoolID, Description: p.Spec.Description, Source: p.Spec.Source, Queue: p.Spec.TaskQueueID,
			Builders: p.Spec.Builders, MachinesHref: "/dashboard?pool=" + url.QueryEscape(p.PoolID), Selected: p.PoolID == v.Pool,
			Sizing: sizes[i].sz}
		if sizes[i].pendingErr != nil {
			pv.PendingErr = sizes[i].pendingErr.Error()
		}
		pv.AboveMax = pv.Sizing.RecommendedCapacity > p.Spec.MaxCapacity
		v.Pools = append(v.Pools, pv)
		v.PoolIDs = append(v.PoolIDs, p.PoolID)
	}
	sort.SliceStable(machines, func(i, j int) bool {
		a, b := machines[i].PoolID, machines[j].PoolID
		if (a == "") != (b == "") {
			return b == ""
		}
		return a < b
	})
	v.Totals.Pools = len(pools)
	for _, m := range machines {
		mv := s.machineRow(s.publicMachine(m), m.TaskStarted, now)
		v.Totals.Machines++
		if mv.Online {
			v.Totals.Online++
		}
		if m.CurrentTask != nil {
			v.Totals.Working++
		}
		if mv.Quarantine != "" {
			v.Totals.Quarantined++
		}
		if m.PoolID == "" {
			v.Totals.Unassigned++
		}
		if v.Pool == "" || m.PoolID == v.Pool {
			v.Machines = append(v.Machines, mv)
		}
	}
	return "index", v, nil
}

// sized is one pool's sizing and why its pending count is unknown.
type sized struct {
	sz         client.Sizing
	pendingErr error
}

// sizeAll sizes every pool as GET …/sizing does, asking the sources in
// parallel (at most demandConcurrency at once, as the assigner does).
func (s *Server) sizeAll(ctx context.Context, pools []client.Pool, machines []*MachineRecord) ([]sized, *apiError) {
	out := make([]sized, len(pools))
	errs := make([]error, len(pools))
	sem := make(chan struct{}, demandConcurrency)
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].sz, out[i].pendingErr, errs[i] = s.poolSizing(ctx, p, machines)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, storeError("task runs of pool "+pools[i].PoolID, err)
		}
	}
	return out, nil
}

// dashboardMachine is one machine's page with its recorded actions, read
// as GET /api/v1/machines/{id} reads it.
func (s *Server) dashboardMachine(r *http.Request, c chrome) (string, any, *apiError) {
	d, aerr := s.machineDetail(r, r.PathValue("id"))
	if aerr != nil {
		return "", nil, aerr
	}
	now := s.now()
	c.Title, c.Refresh = "machine "+d.MachineID, true
	v := machineDetailView{chrome: c, Return: r.URL.RequestURI(), machineView: s.machineRow(d.Machine, nil, now), Health: d.Health,
		Canary: newCanaryView(d.LastCanary, now)}
	if c.Viewer != nil && c.Viewer.CanAct {
		pools, err := s.store.ListPools(r.Context())
		if err != nil {
			return "", nil, storeError("list pools", err)
		}
		for _, p := range pools {
			v.PoolIDs = append(v.PoolIDs, p.PoolID)
		}
	}
	f := d.Facts
	for _, kv := range [][2]string{
		{"hostname", f.Hostname}, {"os", f.OS}, {"os version", f.OSVersion}, {"arch", f.Arch}, {"model", f.Model},
		{"cpus", nonZero(f.CPUs)}, {"memory", mb(f.MemoryMB)}, {"disk", gb(f.DiskGB)}, {"serial", f.Serial},
		{"instance", strings.TrimSpace(f.InstanceID + " " + f.InstanceType)}, {"region", strings.TrimSpace(f.Region + " " + f.AvailabilityZ)},
		{"ami", f.AMI},
	} {
		if kv[1] != "" {
			v.Facts = append(v.Facts, kv)
		}
	}
	tags := make([]string, 0, len(f.Tags))
	for k, val := range f.Tags {
		tags = append(tags, k+"="+val)
	}
	sort.Strings(tags)
	if len(tags) > 0 {
		v.Facts = append(v.Facts, [2]string{"tags", strings.Join(tags, ", ")})
	}
	names := make([]string, 0, len(d.Counters))
	for k := range d.Counters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v.Counters = append(v.Counters, [2]string{k, fmt.Sprint(d.Counters[k])})
	}
	for _, kv := range [][2]any{
		{"registered", &d.Registered}, {"last heartbeat", d.LastHeartbeat}, {"last moved", d.LastMoved},
		{"credentials expire", d.CredentialsExpire},
	} {
		if t := kv[1].(*time.Time); t != nil {
			v.Times = append(v.Times, [2]string{kv[0].(string), stamp(*t) + " (" + ago(now, *t) + ")"})
		}
	}
	for _, a := range d.Actions {
		av := actionView{At: stamp(a.At), Action: a.Action, Who: a.Who, Why: a.Why}
		if len(a.Detail) > 0 && string(a.Detail) != "null" {
			av.Detail = compactJSON(a.Detail)
		}
		v.Actions = append(v.Actions, av)
	}
	return "machine", v, nil
}

// machineRow summarises m; started is when its current work began
// (unknown: nil).
func (s *Server) machineRow(m client.Machine, started *time.Time, now time.Time) machineView {
	v := machineView{ID: m.MachineID, Href: "/dashboard/machines/" + url.PathEscape(m.MachineID), Hostname: m.Facts.Hostname,
		Platform: strings.Trim(m.Facts.OS+"/"+m.Facts.Arch, "/"), Pool: m.PoolID, MovingTo: m.MovingTo,
		State: m.State, Online: m.Online, Draining: m.Draining, HealthOK: true}
	if m.Draining && m.State != client.StateDraining && m.State != client.StateDrained {
		v.DrainTag = "drain requested"
	}
	if m.PoolID != "" {
		v.PoolHref = "/dashboard?pool=" + url.QueryEscape(m.PoolID)
	}
	if t := m.CurrentTask; t != nil {
		v.Work = t.Describe()
		if s.cfg.RootURL != "" && t.TaskID != "" {
			v.TaskHref = strings.TrimRight(s.cfg.RootURL, "/") + "/tasks/" + url.PathEscape(t.TaskID)
		}
		if t.Kind == client.KindBuildbot {
			v.WorkTask = "task " + t.TaskID
		}
		if started != nil {
			v.WorkFor = now.Sub(*started).Round(time.Second).String()
		}
	}
	for _, h := range m.Health {
		if !h.OK {
			v.HealthOK = false
			v.Failing = append(v.Failing, strings.TrimSuffix(h.Name+": "+h.Message, ": "))
		}
	}
	if m.QuarantinedUntil != nil && m.QuarantinedUntil.After(now) {
		v.Quarantine = "until " + stamp(*m.QuarantinedUntil)
		if m.QuarantineReason != "" {
			v.Quarantine += ": " + m.QuarantineReason
		}
	}
	if m.LastHeartbeat != nil {
		v.Heartbeat, v.HeartbeatAt = ago(now, *m.LastHeartbeat), stamp(*m.LastHeartbeat)
	}
	switch {
	case v.Quarantine != "":
		v.Class = "quarantined"
	case !m.Online:
		v.Class = "offline"
	case m.CurrentTask != nil:
		v.Class = "working"
	}
	return v
}

// stamp is a time as the pages show it.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// ago is how long before now t was ("in …" for a future t).
func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

func nonZero(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func mb(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d MB", n)
}

func gb(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d GB", n)
}

// compactJSON is raw on one line (as it came if it does not parse).
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
