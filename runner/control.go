package runner

// The local control API: HTTP over the control channel (platform), never
// TCP. Every answer is JSON; errors are {"error": "..."} with a 4xx/5xx.
//
//	GET  /v1/status         Status
//	POST /v1/drain          stop claiming (persists until resume)     → Status
//	POST /v1/resume         claim again                               → Status
//	POST /v1/quarantine     {"reason": "...", "for": "2h"}            → Status
//	POST /v1/unquarantine                                             → Status
//	POST /v1/reboot         {"afterTask": true}                       → Status
//	POST /v1/check          run every check now                       → CheckReport
//	GET  /metrics           Prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckReport is the answer of /v1/check.
type CheckReport struct {
	// Verdict of the checks directory: ok, halt or exit.
	Verdict string `json:"verdict"`
	// Check and Output name the check that halted or exited.
	Check  string `json:"check,omitempty"`
	Output string `json:"output,omitempty"`
	// Checks is every check's latest result.
	Checks []CheckStatus `json:"checks"`
	// Healthy is false while a built-in check is tripped, a check failed,
	// or a check has not passed once since the runner started.
	Healthy bool `json:"healthy"`
}

// QuarantineRequest is the body of /v1/quarantine.
type QuarantineRequest struct {
	Reason string `json:"reason"`
	// For is a Go duration; empty means until unquarantined.
	For string `json:"for,omitempty"`
}

// RebootRequest is the body of /v1/reboot.
type RebootRequest struct {
	// AfterTask waits for running tasks however long they take; otherwise
	// they get drainGrace and are then resolved worker-shutdown.
	AfterTask bool `json:"afterTask"`
}

func (r *Runner) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, r.Status()) })
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, _ *http.Request) {
		r.Drain()
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.HandleFunc("POST /v1/resume", func(w http.ResponseWriter, _ *http.Request) {
		r.Resume()
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.HandleFunc("POST /v1/quarantine", func(w http.ResponseWriter, req *http.Request) {
		var q QuarantineRequest
		if err := json.NewDecoder(req.Body).Decode(&q); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body: %v; send {\"reason\": \"...\", \"for\": \"2h\"}", err))
			return
		}
		var d time.Duration
		if q.For != "" {
			var err error
			if d, err = time.ParseDuration(q.For); err != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("for: %q is not a positive duration; write e.g. \"2h\" or leave it out", q.For))
				return
			}
		}
		if err := r.Quarantine(q.Reason, d); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.HandleFunc("POST /v1/unquarantine", func(w http.ResponseWriter, _ *http.Request) {
		r.Unquarantine()
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.HandleFunc("POST /v1/reboot", func(w http.ResponseWriter, req *http.Request) {
		var rr RebootRequest
		if err := json.NewDecoder(req.Body).Decode(&rr); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body: %v; send {\"afterTask\": true|false}", err))
			return
		}
		r.RequestReboot(rr.AfterTask)
		writeJSON(w, http.StatusOK, r.Status())
	})
	mux.HandleFunc("POST /v1/check", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, r.CheckNow(req.Context()))
	})
	mux.Handle("GET /metrics", r.metrics.handler())
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// Drain stops claiming until Resume; running tasks finish.
func (r *Runner) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.st.Draining {
		r.log.Info("drain requested")
	}
	r.st.Draining = true
	r.st.DrainReason = "runner drain on this machine"
	r.commit()
}

// Resume ends a drain.
func (r *Runner) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.Draining {
		r.log.Info("resumed")
	}
	r.st.Draining, r.st.DrainReason = false, ""
	r.commit()
}

// Quarantine quarantines the machine by hand; d > 0 sets an expiry.
func (r *Runner) Quarantine(reason string, d time.Duration) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return errors.New("reason: missing; say why the machine is quarantined (--reason)")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q := &Quarantine{Source: SourceManual, Reason: reason}
	if d > 0 {
		until := r.now().Add(d)
		q.Until = &until
	}
	r.setQuarantine(q)
	r.commit()
	return nil
}

// Unquarantine lifts any quarantine. Lifting a boot-loop quarantine also
// forgets the reboot history, or the next reboot would trip the guard again.
func (r *Runner) Unquarantine() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q := r.st.Quarantine; q != nil {
		r.log.Info("quarantine lifted by hand", "source", q.Source, "reason", q.Reason)
		if q.Source == SourceBootLoop {
			r.st.RebootHistory = nil
		}
	}
	r.liftQuarantine()
	r.commit()
}

// RequestReboot asks for a reboot: after the running tasks, or after
// drainGrace at most.
func (r *Runner) RequestReboot(afterTask bool) {
	r.mu.Lock()
	if afterTask {
		r.requestReboot("requested by an operator, after the running task", true, 0)
	} else {
		r.requestReboot("requested by an operator", true, r.cfg.DrainGrace.Duration)
	}
	r.commit()
	r.mu.Unlock()
	go r.maybeReboot()
}

// CheckNow runs the checks directory and the built-in checks now.
func (r *Runner) CheckNow(ctx context.Context) CheckReport {
	v := r.runCheckDir(ctx)
	r.runBuiltins(ctx, true, false)
	go r.maybeReboot()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := CheckReport{Verdict: v.Verdict, Check: v.Check, Output: v.Output, Checks: r.st.clone().Checks, Healthy: v.Verdict == VerdictOK && !r.healthTripped() && len(r.pendingChecks()) == 0}
	return rep
}
