package provisioner

// The system map: every component the central side depends on and its
// health as this replica sees it now, so that a tree closure can be
// diagnosed from one page (GET /api/v1/system, /dashboard/map).
//
//	queue      ping, timed; the last failed pendingTasks of this replica
//	pulse      the provisioner's task-exception queue: bound, consumers, backlog
//	bridges    each instance's /api/v1/status: last message, lag, dead letters, its databases and queues
//	replicas   the replicas table: who is alive, who assigns, their last error
//	databases  the provisioner's (timed query); the bridges' (from their status)
//
// Every probe runs at once and is bounded, so one dead component costs
// the page its timeout, not the sum of all.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/provisioner/client"
)

// probeTimeout bounds each probe.
const probeTimeout = 5 * time.Second

// bridgeStatus is the part of a bridge's GET /api/v1/status the map shows.
type bridgeStatus struct {
	Instance              string `json:"instance"`
	TaskQueueID           string `json:"taskQueueId"`
	Tasks                 int    `json:"tasks"`
	Queued                int    `json:"queued"`
	Running               int    `json:"running"`
	Unbound               int    `json:"unbound"`
	OldestQueuedSeconds   int64  `json:"oldestQueuedSeconds"`
	LastMessageSecondsAgo int64  `json:"lastMessageSecondsAgo"`
	ReclaimOverdue        int    `json:"reclaimOverdue"`
	DeadLetters           int64  `json:"deadLetters"`
	LatestDead            []struct {
		Queue string `json:"queue"`
		Error string `json:"error"`
		At    int64  `json:"at"`
	} `json:"latestDeadLetters"`
	Databases []struct {
		Name      string  `json:"name"`
		Dialect   string  `json:"dialect"`
		OK        bool    `json:"ok"`
		LatencyMS float64 `json:"latencyMs"`
		Error     string  `json:"error"`
	} `json:"databases"`
	PulseQueues []pulse.QueueInfo `json:"pulseQueues"`
	PulseError  string            `json:"pulseError"`
}

func ms2(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fact(name, format string, args ...any) client.Fact {
	return client.Fact{Name: name, Value: fmt.Sprintf(format, args...)}
}

// withLastError adds the component's last remembered error.
func (s *Server) withLastError(c client.Component, key string, err error) client.Component {
	now := s.now()
	s.probes.note(key, err, now)
	if e, ok := s.probes.get(key); ok {
		at := e.At
		c.LastError, c.LastErrorAt = e.Msg, &at
	}
	return c
}

// systemMap probes every component in parallel.
func (s *Server) systemMap(ctx context.Context) *client.SystemMap {
	out := &client.SystemMap{At: s.now(), Replica: s.cfg.ReplicaID}
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(cs ...client.Component) {
		mu.Lock()
		out.Components = append(out.Components, cs...)
		mu.Unlock()
	}
	run := func(f func(context.Context) []client.Component) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, probeTimeout+time.Second)
			defer cancel()
			add(f(ctx)...)
		}()
	}
	run(func(ctx context.Context) []client.Component { return []client.Component{s.probeQueue(ctx)} })
	run(func(ctx context.Context) []client.Component { return []client.Component{s.probePulse(ctx)} })
	run(s.probeReplicasAndDB)
	for _, b := range s.cfg.Bridges {
		run(func(ctx context.Context) []client.Component { return s.probeBridge(ctx, b) })
	}
	wg.Wait()
	order := map[string]int{"queue": 0, "pulse": 1, "bridge": 2, "replica": 3, "database": 4}
	sort.SliceStable(out.Components, func(i, j int) bool {
		a, b := out.Components[i], out.Components[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Name < b.Name
	})
	return out
}

func (s *Server) probeQueue(ctx context.Context) client.Component {
	c := client.Component{Kind: "queue", Name: "Taskcluster queue", Facts: []client.Fact{}}
	if s.cfg.RootURL == "" {
		c.Health, c.Summary = client.HealthUnknown, "no rootUrl configured: pending counts come from elsewhere"
		return c
	}
	c.Facts = append(c.Facts, fact("root URL", "%s", s.cfg.RootURL))
	q, err := s.tc.queue(ctx, "")
	if err == nil {
		start := time.Now()
		err = q.Ping()
		c.LatencyMS = ms2(time.Since(start))
	}
	if err != nil {
		c.Health, c.Summary = client.HealthDown, "unreachable: queue.ping failed"
		return s.withLastError(c, "queue", fmt.Errorf("queue.ping: %w", err))
	}
	c.Health, c.Summary = client.HealthOK, fmt.Sprintf("reachable, ping %.0f ms", c.LatencyMS)
	return s.withLastError(c, "queue", nil)
}

func (s *Server) probePulse(ctx context.Context) client.Component {
	c := client.Component{Kind: "pulse", Name: "Pulse (provisioner)", Facts: []client.Fact{}}
	if s.cfg.Pulse == nil {
		c.Health = client.HealthUnknown
		c.Summary = fmt.Sprintf("not configured: cancellations are found by polling the queue every %s", s.cfg.CancelPollInterval)
		return c
	}
	c.Facts = append(c.Facts, fact("queue", "%s", s.cfg.PulseQueue))
	bound := false
	select {
	case <-s.cancelReady:
		bound = true
	default:
	}
	c.Facts = append(c.Facts, fact("task-exception consumer", "%s", map[bool]string{true: "bound", false: "not bound yet"}[bound]))
	in, ok := s.cfg.Pulse.(pulse.Inspector)
	if !ok {
		c.Health, c.Summary = map[bool]string{true: client.HealthOK, false: client.HealthDegraded}[bound], "consumer "+map[bool]string{true: "bound", false: "not bound"}[bound]
		return s.withLastError(c, "pulse", nil)
	}
	start := time.Now()
	qi, err := in.InspectQueue(ctx, s.cfg.PulseQueue)
	c.LatencyMS = ms2(time.Since(start))
	if err != nil {
		c.Health, c.Summary = client.HealthDown, "the broker could not report the queue"
		return s.withLastError(c, "pulse", err)
	}
	c.Facts = append(c.Facts, fact("consumers", "%d", qi.Consumers), fact("messages waiting", "%d", qi.Messages))
	c.Health, c.Summary = client.HealthOK, fmt.Sprintf("%d consumers on %s, %d messages waiting", qi.Consumers, qi.Name, qi.Messages)
	if qi.Consumers == 0 || !bound {
		c.Health = client.HealthDegraded
		c.Summary = "no consumer on " + qi.Name + ": cancellations reach machines only at their next reclaim"
	}
	return s.withLastError(c, "pulse", nil)
}

func (s *Server) probeReplicasAndDB(ctx context.Context) []client.Component {
	db := client.Component{Kind: "database", Name: "provisioner database", Facts: []client.Fact{}}
	hs := s.historyStore()
	if hs == nil {
		db.Health, db.Summary = client.HealthUnknown, "the store cannot be probed"
		return []client.Component{db}
	}
	start := time.Now()
	err := hs.Ping(ctx)
	db.LatencyMS = ms2(time.Since(start))
	if err != nil {
		db.Health, db.Summary = client.HealthDown, "does not answer"
		return []client.Component{s.withLastError(db, "database", err)}
	}
	db.Health, db.Summary = client.HealthOK, fmt.Sprintf("answers in %.1f ms", db.LatencyMS)
	out := []client.Component{s.withLastError(db, "database", nil)}
	now := s.now()
	reps, err := hs.Replicas(ctx, now.Add(-10*s.cfg.HistoryInterval))
	if err != nil {
		out[0] = s.withLastError(out[0], "database", err)
		return out
	}
	// This replica's own row is only as fresh as its last tick: use what
	// it knows now.
	self := s.selfReplica(now)
	found := false
	for i := range reps {
		if reps[i].ReplicaID == self.ReplicaID {
			reps[i], found = self, true
		}
	}
	if !found {
		reps = append(reps, self)
	}
	leaders := 0
	for _, r := range reps {
		if r.Leading && now.Sub(r.Seen) <= 2*s.cfg.HistoryInterval {
			leaders++
		}
	}
	for _, r := range reps {
		c := client.Component{Kind: "replica", Name: "provisioner " + r.ReplicaID, Facts: []client.Fact{
			fact("host", "%s", r.Hostname), fact("started", "%s", stamp(r.Started)), fact("last seen", "%s", ago(now, r.Seen))}}
		role := "serves the API"
		if r.Leading {
			role = "serves the API and runs the assigner"
		}
		c.Facts = append(c.Facts, fact("role", "%s", role))
		switch {
		case now.Sub(r.Seen) > 2*s.cfg.HistoryInterval:
			c.Health, c.Summary = client.HealthDown, "silent for "+now.Sub(r.Seen).Round(time.Second).String()
		case r.LastErrorAt != nil && now.Sub(*r.LastErrorAt) <= 2*s.cfg.HistoryInterval:
			c.Health, c.Summary = client.HealthDegraded, role+"; failed recently"
		default:
			c.Health, c.Summary = client.HealthOK, role
		}
		if r.ReplicaID == s.cfg.ReplicaID {
			c.Summary += " (this replica)"
		}
		c.LastError, c.LastErrorAt = r.LastError, r.LastErrorAt
		out = append(out, c)
	}
	if leaders == 0 {
		out = append(out, client.Component{Kind: "replica", Name: "assigner", Health: client.HealthDown, Facts: []client.Fact{},
			Summary: "no live replica runs the assigner: machines are not moved, credentials not renewed"})
	}
	return out
}

func (s *Server) probeBridge(ctx context.Context, b BridgeEndpoint) []client.Component {
	c := client.Component{Kind: "bridge", Name: "bridge " + b.Name, Facts: []client.Fact{fact("URL", "%s", b.URL)}}
	var st bridgeStatus
	took, err := s.bridgeGet(ctx, b, "/api/v1/status", &st)
	c.LatencyMS = ms2(took)
	key := "bridge " + b.Name
	if err != nil {
		c.Health, c.Summary = client.HealthDown, "status unavailable"
		return []client.Component{s.withLastError(c, key, err)}
	}
	var problems []string
	last := "never"
	if st.LastMessageSecondsAgo >= 0 {
		last = (time.Duration(st.LastMessageSecondsAgo) * time.Second).String() + " ago"
	}
	c.Facts = append(c.Facts, fact("instance", "%s", st.Instance), fact("bridges", "%s", st.TaskQueueID),
		fact("last Pulse message", "%s", last),
		fact("tasks tracked", "%d (queued %d, running %d, unbound %d)", st.Tasks, st.Queued, st.Running, st.Unbound),
		fact("oldest queued", "%s", (time.Duration(st.OldestQueuedSeconds)*time.Second).String()),
		fact("reclaims overdue", "%d", st.ReclaimOverdue), fact("dead letters", "%d", st.DeadLetters))
	if st.ReclaimOverdue > 0 {
		problems = append(problems, fmt.Sprintf("%d reclaims overdue", st.ReclaimOverdue))
	}
	if st.DeadLetters > 0 {
		problems = append(problems, fmt.Sprintf("%d dead letters", st.DeadLetters))
		if d := st.LatestDead; len(d) > 0 {
			at := time.Unix(d[0].At, 0).UTC()
			c.LastError, c.LastErrorAt = "dead letter from "+d[0].Queue+": "+d[0].Error, &at
		}
	}
	for _, q := range st.PulseQueues {
		c.Facts = append(c.Facts, fact("Pulse "+q.Name, "%d consumers, %d waiting", q.Consumers, q.Messages))
		if q.Consumers == 0 && !strings.HasSuffix(q.Name, "/dead-letter") {
			problems = append(problems, "no consumer on "+q.Name)
		}
	}
	if st.PulseError != "" {
		c.Facts = append(c.Facts, fact("Pulse", "%s", st.PulseError))
	}
	c.Health, c.Summary = client.HealthOK, fmt.Sprintf("last message %s, oldest queued request %ds", last, st.OldestQueuedSeconds)
	if len(problems) > 0 {
		c.Health, c.Summary = client.HealthDegraded, strings.Join(problems, "; ")
	}
	out := []client.Component{c}
	for _, d := range st.Databases {
		dc := client.Component{Kind: "database", Name: d.Name + " (bridge " + b.Name + ")", LatencyMS: d.LatencyMS,
			Facts: []client.Fact{fact("dialect", "%s", d.Dialect)}, Health: client.HealthOK, Summary: fmt.Sprintf("answers in %.1f ms", d.LatencyMS)}
		if !d.OK {
			dc.Health, dc.Summary, dc.LastError = client.HealthDown, "does not answer", d.Error
		}
		out = append(out, dc)
	}
	if c.LastError == "" {
		out[0] = s.withLastError(c, key, nil)
	}
	return out
}

func (s *Server) getSystem(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	writeJSON(w, http.StatusOK, s.systemMap(r.Context()))
	return nil
}

// selfReplica is this replica as it is now.
func (s *Server) selfReplica(now time.Time) ReplicaRecord {
	host, _ := os.Hostname()
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	r := ReplicaRecord{ReplicaID: s.cfg.ReplicaID, Hostname: host, Started: s.hist.started, Seen: now, Leading: s.Leading(),
		LastError: s.hist.lastErr, LastErrorAt: s.hist.lastErrAt}
	if r.Started.IsZero() {
		r.Started = now
	}
	return r
}
