package provisioner

// POST /api/v1/machines/{id}/runs: a machine reports its finished runs
// (result, reason, times, exit code; a canary's also the tail of its log)
// for the black-hole detector. Each run is stored once, so a runner
// retries a report without counting it twice. Only the machine's own
// token may report its runs (accessMachine), so no machine can put a log
// on another's page.

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

var runResults = []string{client.ResultCompleted, client.ResultFailed, client.ResultException}

// decodeRunReports reads and checks a run reports body.
func decodeRunReports(data []byte) (client.RunReportsRequest, *apiError) {
	var req client.RunReportsRequest
	if aerr := decodeBytes(data, &req); aerr != nil {
		return req, aerr
	}
	if len(req.Runs) > client.MaxRunReports {
		return req, badField("runs", "%d runs in one request; send at most %d per request", len(req.Runs), client.MaxRunReports)
	}
	for i := range req.Runs {
		r := &req.Runs[i]
		at := func(f string) string { return fmt.Sprintf("runs[%d].%s", i, f) }
		if r.TaskID == "" {
			return req, badField(at("taskId"), "is empty: name the run's task")
		}
		if r.RunID < 0 || r.RunID > math.MaxInt32 {
			return req, badField(at("runId"), "must be from 0 to %d, not %d", math.MaxInt32, r.RunID)
		}
		if r.Kind == client.KindCanary {
			// A black hole's recovery probe (blackhole_canary.go).
			if r.Builder != "" || r.BuildNumber != 0 {
				return req, badField(at("kind"), "builder and buildNumber belong to Buildbot builds, not to a canary: remove them")
			}
		} else {
			ref := client.TaskRef{TaskID: r.TaskID, RunID: r.RunID, Kind: r.Kind, Builder: r.Builder, BuildNumber: r.BuildNumber}
			if aerr := checkTaskKind(&ref); aerr != nil {
				aerr.field = strings.Replace(aerr.field, "currentTask.", fmt.Sprintf("runs[%d].", i), 1)
				return req, aerr
			}
			r.Kind = ref.Kind
		}
		if !slices.Contains(runResults, r.Result) {
			return req, badField(at("result"), "%q is not a result: use one of %s", r.Result, strings.Join(runResults, ", "))
		}
		if r.ExitCode != nil && (*r.ExitCode < math.MinInt32 || *r.ExitCode > math.MaxUint32) {
			return req, badField(at("exitCode"), "%d is not an exit code (32 bits)", *r.ExitCode)
		}
		if r.Finished.Before(r.Started) {
			return req, badField(at("finished"), "%s is before started %s", r.Finished.Format("2006-01-02T15:04:05Z07:00"), r.Started.Format("2006-01-02T15:04:05Z07:00"))
		}
		if r.Started.Year() < 2000 {
			return req, badField(at("started"), "%s is before the year 2000: send when the run started", r.Started.Format("2006-01-02T15:04:05Z07:00"))
		}
		if aerr := checkRunLog(r, at("log")); aerr != nil {
			return req, aerr
		}
	}
	return req, nil
}

// checkRunLog refuses a log on a run that is not a canary's (a queue
// run's log is the queue's artifact) and one longer than client.MaxRunLog,
// whatever the runner sends: the store keeps at most that per report.
// strictCheck has already refused invalid UTF-8 and U+0000.
func checkRunLog(r *client.RunReport, field string) *apiError {
	switch {
	case r.Log == "":
		return nil
	case r.Kind != client.KindCanary:
		return badField(field, "only a canary's report carries its log (this run is of kind %s): remove it", r.Kind)
	case len(r.Log) > client.MaxRunLog:
		return badField(field, "%d bytes; a canary's log holds at most %d (send the tail of its output)", len(r.Log), client.MaxRunLog)
	}
	return nil
}

func (s *Server) reportRuns(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, aerr := decodeRunReports(raw)
	if aerr != nil {
		return aerr
	}
	id := r.PathValue("id")
	m, err := s.store.GetMachine(r.Context(), id)
	if err != nil {
		return storeError("machine", err)
	}
	recs := make([]RunRecord, len(req.Runs))
	for i, run := range req.Runs {
		recs[i] = RunRecord{RunReport: run, PoolID: m.PoolID, MachineID: id}
	}
	added, err := s.store.AddRunReports(r.Context(), recs, s.now())
	if err != nil {
		return storeError("record runs", err)
	}
	if added > 0 {
		s.countReports(req.Runs, added)
		s.detectSoon()
	}
	writeJSON(w, http.StatusOK, client.RunReportsResponse{Accepted: added, Duplicates: len(req.Runs) - added})
	return nil
}

// countReports adds new reports to the metric by result; when some of the
// batch were duplicates the split is unknown, so only whole-new batches
// are counted per result and the rest as "unknown".
func (s *Server) countReports(runs []client.RunReport, added int) {
	if added == len(runs) {
		for _, run := range runs {
			s.metrics.runReports.WithLabelValues(run.Result).Inc()
		}
		return
	}
	s.metrics.runReports.WithLabelValues("unknown").Add(float64(added))
}
