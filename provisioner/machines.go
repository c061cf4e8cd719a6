package provisioner

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// publicMachine is m as the API shows it.
func (s *Server) publicMachine(m *MachineRecord) client.Machine {
	pm := m.Machine
	pm.Online = online(m, s.now(), s.cfg.OfflineAfter)
	if pm.MovingTo == unassignTarget {
		pm.MovingTo = "(unassigned)"
	}
	return pm
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	ms, err := s.store.ListMachines(r.Context())
	if err != nil {
		return storeError("list machines", err)
	}
	pool := r.URL.Query().Get("pool")
	out := client.MachineList{Machines: []client.Machine{}}
	for _, m := range ms {
		if pool != "" && m.PoolID != pool {
			continue
		}
		out.Machines = append(out.Machines, s.publicMachine(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) machineDetail(r *http.Request, id string) (client.MachineDetail, *apiError) {
	m, err := s.store.GetMachine(r.Context(), id)
	if err != nil {
		return client.MachineDetail{}, storeError("get machine", err)
	}
	actions, err := s.store.Actions(r.Context(), id, 50)
	if err != nil {
		return client.MachineDetail{}, storeError("get machine actions", err)
	}
	d := client.MachineDetail{Machine: s.publicMachine(m), Actions: actions}
	switch c, err := s.store.LatestCanary(r.Context(), id, ""); {
	case err == nil:
		d.LastCanary = &c.RunReport
	case !errors.Is(err, ErrNotFound):
		return client.MachineDetail{}, storeError("get machine canary", err)
	}
	return d, nil
}

func (s *Server) getMachine(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	d, aerr := s.machineDetail(r, r.PathValue("id"))
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

var heartbeatStates = []string{client.StateIdle, client.StateBusy, client.StateDraining, client.StateDrained, client.StateRebooting, client.StateStarting}

// decodeHeartbeat reads and checks a heartbeat body.
func decodeHeartbeat(data []byte) (client.HeartbeatRequest, *apiError) {
	var hb client.HeartbeatRequest
	if aerr := decodeBytes(data, &hb); aerr != nil {
		return hb, aerr
	}
	ok := false
	for _, st := range heartbeatStates {
		ok = ok || hb.State == st
	}
	if !ok {
		return hb, badField("state", "%q is not a state: use one of %s", hb.State, strings.Join(heartbeatStates, ", "))
	}
	if hb.CurrentTask != nil {
		if hb.CurrentTask.TaskID == "" {
			return hb, badField("currentTask.taskId", "missing: omit currentTask when no task runs")
		}
		if hb.CurrentTask.RunID < 0 || hb.CurrentTask.RunID > math.MaxInt32 {
			return hb, badField("currentTask.runId", "must be from 0 to %d, not %d", math.MaxInt32, hb.CurrentTask.RunID)
		}
		if aerr := checkTaskKind(hb.CurrentTask); aerr != nil {
			return hb, aerr
		}
	}
	for i, h := range hb.Health {
		if h.Name == "" {
			return hb, badField(fmt.Sprintf("health[%d].name", i), "is empty: name the health check")
		}
	}
	return hb, nil
}

// checkTaskKind checks a current task's kind and Buildbot build, and
// fills the kind of runners that send none (taskcluster).
func checkTaskKind(t *client.TaskRef) *apiError {
	switch t.Kind {
	case "":
		t.Kind = client.KindTaskcluster
		fallthrough
	case client.KindTaskcluster:
		if t.Builder != "" || t.BuildNumber != 0 {
			return badField("currentTask.kind", "builder and buildNumber belong to Buildbot builds: set kind %q or remove them", client.KindBuildbot)
		}
	case client.KindBuildbot:
		if t.Builder == "" {
			return badField("currentTask.builder", "missing: a buildbot run names its builder")
		}
		if t.BuildNumber < 0 || t.BuildNumber > math.MaxInt32 {
			return badField("currentTask.buildNumber", "must be from 0 to %d, not %d", math.MaxInt32, t.BuildNumber)
		}
	default:
		return badField("currentTask.kind", "%q is not a kind of work: use %q or %q", t.Kind, client.KindTaskcluster, client.KindBuildbot)
	}
	return nil
}

// afterParam reads the `after` directive cursor.
func afterParam(r *http.Request) (int64, *apiError) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badField("after", "%q is not a directive id: pass the last id you handled, or 0", v)
	}
	return n, nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	id := r.PathValue("id")
	after, aerr := afterParam(r)
	if aerr != nil {
		return aerr
	}
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	hb, aerr := decodeHeartbeat(raw)
	if aerr != nil {
		return aerr
	}
	ctx := r.Context()
	if err := s.store.Heartbeat(ctx, id, hb, s.now()); err != nil {
		return storeError("heartbeat", err)
	}
	s.metrics.heartbeats.Inc()
	if hb.State == client.StateDrained && hb.CurrentTask == nil {
		if aerr := s.completeMoveIfDrained(r, id); aerr != nil {
			return aerr
		}
	}
	ds, err := s.store.Directives(ctx, id, after)
	if err != nil {
		return storeError("directives", err)
	}
	writeJSON(w, http.StatusOK, client.HeartbeatResponse{Directives: ds})
	return nil
}

// completeMoveIfDrained finishes a pending move as soon as the machine
// reports drained, rather than at the next assigner pass.
func (s *Server) completeMoveIfDrained(r *http.Request, id string) *apiError {
	ctx := r.Context()
	s.assignMu.Lock()
	defer s.assignMu.Unlock()
	m, err := s.store.GetMachine(ctx, id)
	if err != nil {
		return storeError("get machine", err)
	}
	if m.MovingTo == "" {
		return nil
	}
	var pool *client.Pool
	if m.MovingTo != unassignTarget {
		p, err := s.store.GetPool(ctx, m.MovingTo)
		if err == nil {
			pool = &p
		}
	}
	if err := s.completeMove(ctx, m, pool, "assigner"); err != nil {
		return storeError("complete move", err)
	}
	return nil
}

// waitParam reads the long-poll duration: a Go duration ("30s") or seconds.
func (s *Server) waitParam(r *http.Request) (time.Duration, *apiError) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, badField("wait", "%q is not a duration: use e.g. 30s", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, badField("wait", "must not be negative")
	}
	return min(d, s.cfg.MaxWait), nil
}

func (s *Server) directives(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	id := r.PathValue("id")
	after, aerr := afterParam(r)
	if aerr != nil {
		return aerr
	}
	wait, aerr := s.waitParam(r)
	if aerr != nil {
		return aerr
	}
	ctx := r.Context()
	if _, err := s.store.GetMachine(ctx, id); err != nil {
		return storeError("machine", err)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		// Register before reading so that a directive queued between the
		// read and the wait still wakes us.
		ch, cancel := s.notify.wait(id)
		ds, err := s.store.Directives(ctx, id, after)
		if err != nil {
			cancel()
			return storeError("directives", err)
		}
		if len(ds) > 0 || wait == 0 {
			cancel()
			writeJSON(w, http.StatusOK, client.DirectivesResponse{Directives: ds})
			return nil
		}
		select {
		case <-ch:
			cancel()
		case <-deadline.C:
			cancel()
			writeJSON(w, http.StatusOK, client.DirectivesResponse{Directives: []client.Directive{}})
			return nil
		case <-ctx.Done():
			cancel()
			return errStatus(499, "Canceled", "client went away")
		}
	}
}
