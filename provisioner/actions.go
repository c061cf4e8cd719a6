package provisioner

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// quarantineBody mirrors client.QuarantineRequest with until as a string,
// so that a bad date gets an error naming the field.
type quarantineBody struct {
	Reason string `json:"reason"`
	Until  string `json:"until"`
}

// decodeQuarantine reads and checks a quarantine body.
func decodeQuarantine(data []byte, now time.Time) (client.QuarantineRequest, *apiError) {
	var b quarantineBody
	if aerr := decodeBytes(data, &b); aerr != nil {
		return client.QuarantineRequest{}, aerr
	}
	if strings.TrimSpace(b.Reason) == "" {
		return client.QuarantineRequest{}, badField("reason", "missing: say why, for the record")
	}
	if b.Until == "" {
		return client.QuarantineRequest{}, badField("until", "missing: an RFC 3339 date-time such as 2026-12-01T00:00:00Z")
	}
	until, err := time.Parse(time.RFC3339, b.Until)
	if err != nil {
		return client.QuarantineRequest{}, badField("until", "%q is not an RFC 3339 date-time such as 2026-12-01T00:00:00Z", b.Until)
	}
	if !until.After(now) {
		return client.QuarantineRequest{}, badField("until", "%s is in the past: to lift a quarantine, DELETE it", b.Until)
	}
	if until.UTC().Year() > 9999 {
		// JSON dates (RFC 3339) end at year 9999.
		return client.QuarantineRequest{}, badField("until", "%s is after the year 9999 in UTC", b.Until)
	}
	return client.QuarantineRequest{Reason: b.Reason, Until: until.UTC()}, nil
}

// decodeAction reads the {reason} body of reboot, drain and unquarantine;
// reason is optional but the body is not: send at least {}.
func decodeAction(data []byte) (client.ActionRequest, *apiError) {
	var a client.ActionRequest
	return a, decodeBytes(data, &a)
}

// decodeAssign reads and checks an assign body.
func decodeAssign(data []byte) (client.AssignRequest, *apiError) {
	var a client.AssignRequest
	if aerr := decodeBytes(data, &a); aerr != nil {
		return a, aerr
	}
	if a.PoolID == "" {
		return a, badField("poolId", "missing: name the pool to assign the machine to")
	}
	return a, validatePoolID("poolId", a.PoolID)
}

// machineActionFunc changes one machine under the assigner's lock;
// after, when set, runs outside it for slow remote calls. Both return
// warnings for the answer.
type machineActionFunc struct {
	under func(ctx context.Context, m *MachineRecord) ([]string, *apiError)
	after func(ctx context.Context, m *MachineRecord) []string
}

// applyAction loads machine id, runs a.under under the assigner's lock (so
// a pass does not move it meanwhile), then a.after outside it. The API
// and the dashboard's forms both act through it.
func (s *Server) applyAction(ctx context.Context, id string, a machineActionFunc) ([]string, *apiError) {
	s.assignMu.Lock()
	m, err := s.store.GetMachine(ctx, id)
	if err != nil {
		s.assignMu.Unlock()
		return nil, storeError("machine", err)
	}
	warnings, aerr := a.under(ctx, m)
	s.assignMu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	if a.after != nil {
		warnings = append(warnings, a.after(ctx, m)...)
	}
	return warnings, nil
}

// answerAction applies a to the machine in the path and answers with the
// machine's detail.
func (s *Server) answerAction(w http.ResponseWriter, r *http.Request, a machineActionFunc) *apiError {
	id := r.PathValue("id")
	warnings, aerr := s.applyAction(r.Context(), id, a)
	if aerr != nil {
		return aerr
	}
	d, aerr := s.machineDetail(r, id)
	if aerr != nil {
		return aerr
	}
	d.Warnings = warnings
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) record(ctx context.Context, m *MachineRecord, action string, p *principal, why string) *apiError {
	if err := s.store.AddAction(ctx, m.MachineID, client.Action{Action: action, Who: p.name, Why: why, At: s.now()}); err != nil {
		return storeError("record action", err)
	}
	s.log.Info("machine action", "machine", m.MachineID, "action", action, "by", p.name, "why", why)
	return nil
}

func (s *Server) quarantineMachine(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, aerr := decodeQuarantine(raw, s.now())
	if aerr != nil {
		return aerr
	}
	return s.answerAction(w, r, s.quarantineAction(req, p))
}

// quarantineAction quarantines a machine until req.Until and mirrors it on
// the queue.
func (s *Server) quarantineAction(req client.QuarantineRequest, p *principal) machineActionFunc {
	return machineActionFunc{under: func(ctx context.Context, m *MachineRecord) ([]string, *apiError) {
		m.QuarantinedUntil, m.QuarantineReason = &req.Until, req.Reason
		if err := s.store.SaveMachine(ctx, m); err != nil {
			return nil, storeError("save machine", err)
		}
		if err := s.queueDirective(ctx, m.MachineID, client.Directive{Kind: client.DirectiveQuarantine, Reason: req.Reason, Until: &req.Until}); err != nil {
			return nil, storeError("queue directive", err)
		}
		if aerr := s.record(ctx, m, "quarantine", p, req.Reason+" (until "+req.Until.Format(time.RFC3339)+")"); aerr != nil {
			return nil, aerr
		}
		s.changed()
		return nil, nil
	}, after: func(ctx context.Context, m *MachineRecord) []string {
		return s.mirrorQuarantine(ctx, m, req.Until)
	}}
}

func (s *Server) unquarantineMachine(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, aerr := decodeAction(raw)
	if aerr != nil {
		return aerr
	}
	return s.answerAction(w, r, s.unquarantineAction(req, p))
}

// unquarantineAction lifts a machine's quarantine, here and on the queue.
func (s *Server) unquarantineAction(req client.ActionRequest, p *principal) machineActionFunc {
	return machineActionFunc{under: func(ctx context.Context, m *MachineRecord) ([]string, *apiError) {
		m.QuarantinedUntil, m.QuarantineReason = nil, ""
		if err := s.store.SaveMachine(ctx, m); err != nil {
			return nil, storeError("save machine", err)
		}
		// Released by a person: the runs behind any detector quarantine
		// are not judged again.
		if err := s.store.ReleaseRuns(ctx, m.MachineID); err != nil {
			return nil, storeError("release judged runs", err)
		}
		if err := s.queueDirective(ctx, m.MachineID, client.Directive{Kind: client.DirectiveUnquarantine, Reason: req.Reason}); err != nil {
			return nil, storeError("queue directive", err)
		}
		if aerr := s.record(ctx, m, "unquarantine", p, req.Reason); aerr != nil {
			return nil, aerr
		}
		s.changed()
		return nil, nil
	}, after: func(ctx context.Context, m *MachineRecord) []string {
		// A past date lifts the queue's quarantine.
		return s.mirrorQuarantine(ctx, m, s.now().Add(-time.Minute))
	}}
}

// mirrorQuarantine sets the queue's quarantine of m's worker; a failure is
// a warning, since the provisioner's own quarantine already holds.
func (s *Server) mirrorQuarantine(ctx context.Context, m *MachineRecord, until time.Time) []string {
	if m.PoolID == "" || s.cfg.RootURL == "" {
		return nil
	}
	pool, err := s.store.GetPool(ctx, m.PoolID)
	if err != nil || !client.HasTaskcluster(pool.Spec.Source) {
		return nil
	}
	if err := s.tc.quarantine(ctx, pool.PoolID, pool.Spec.TaskQueueID, pool.Spec.WorkerGroup, m.MachineID, until); err != nil {
		s.log.Warn("quarantine not mirrored to the queue", "machine", m.MachineID, "error", err)
		return []string{"queue quarantine not updated: " + err.Error()}
	}
	return nil
}

func (s *Server) simpleDirectiveAction(kind, action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
		raw, aerr := readBody(r.Body)
		if aerr != nil {
			return aerr
		}
		req, aerr := decodeAction(raw)
		if aerr != nil {
			return aerr
		}
		return s.answerAction(w, r, s.directiveAction(kind, action, req, p))
	}
}

// directiveAction queues a reboot or drain directive (a drain also marks
// the machine draining until an assign ends it).
func (s *Server) directiveAction(kind, action string, req client.ActionRequest, p *principal) machineActionFunc {
	return machineActionFunc{under: func(ctx context.Context, m *MachineRecord) ([]string, *apiError) {
		if kind == client.DirectiveDrain {
			m.Draining = true
			if err := s.store.SaveMachine(ctx, m); err != nil {
				return nil, storeError("save machine", err)
			}
			s.changed()
		}
		if err := s.queueDirective(ctx, m.MachineID, client.Directive{Kind: kind, Reason: req.Reason}); err != nil {
			return nil, storeError("queue directive", err)
		}
		return nil, s.record(ctx, m, action, p, req.Reason)
	}}
}

func (s *Server) assignMachine(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, aerr := decodeAssign(raw)
	if aerr != nil {
		return aerr
	}
	a, aerr := s.assignAction(r.Context(), req, p)
	if aerr != nil {
		return aerr
	}
	return s.answerAction(w, r, a)
}

// assignAction moves a machine to req.PoolID (drain first, as the
// assigner does) after checking the pool's constraints.
func (s *Server) assignAction(ctx context.Context, req client.AssignRequest, p *principal) (machineActionFunc, *apiError) {
	pool, err := s.store.GetPool(ctx, req.PoolID)
	if err != nil {
		return machineActionFunc{}, storeError("pool", err)
	}
	return machineActionFunc{under: func(ctx context.Context, m *MachineRecord) ([]string, *apiError) {
		mt := compileConstraints(pool.Spec.Constraints)
		if why := mt.mismatch(&m.Facts); why != "" {
			return nil, errStatus(http.StatusConflict, "Ineligible", "machine %s does not fit pool %s: %s", m.MachineID, pool.PoolID, why)
		}
		if aerr := s.record(ctx, m, "assign-requested", p, "to "+pool.PoolID+": "+req.Reason); aerr != nil {
			return nil, aerr
		}
		if err := s.startMove(ctx, m, &pool, p.name, req.Reason); err != nil {
			return nil, storeError("assign", err)
		}
		return nil, nil
	}}, nil
}
