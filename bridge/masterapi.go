package bridge

// Master API: a labrunner agent in the place of a Buildbot 0.8.2 master.
//
//	POST /api/v1/master/claim      the build this worker already holds (a
//	                               retried claim), else claim the best
//	                               pending request (docs/bridge.md,
//	                               "SchedulerDB", Claim), insert its
//	                               builds row; publish build.<b>.<n>.started
//	POST /api/v1/master/heartbeat  re-claim (the 10-minute rule) and say
//	                               whether the build was cancelled
//	POST /api/v1/master/finish     complete as a master does (RETRY
//	                               re-queues the same request), publish
//	                               log_uploaded
//	GET  /api/v1/master/pending    pending requests per builder
//	GET  /api/v1/status            what `bridge status` prints
//	GET  /metrics                  Prometheus

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

// maxClaimWait bounds how long a claim call is held open.
const maxClaimWait = 60 * time.Second

// claimPoll is how often a held claim call looks for work again.
const claimPoll = 250 * time.Millisecond

// Handler serves the master API, the status endpoint and /metrics.
func (b *Bridge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/master/claim", b.api("claim", b.serveClaim))
	mux.HandleFunc("POST /api/v1/master/heartbeat", b.api("heartbeat", b.serveHeartbeat))
	mux.HandleFunc("POST /api/v1/master/finish", b.api("finish", b.serveFinish))
	mux.HandleFunc("GET /api/v1/master/pending", b.api("pending", func(r *http.Request) (any, error) {
		p, err := b.sdb.PendingByBuilder(r.Context())
		return client.PendingResponse{Builders: p}, err
	}))
	mux.HandleFunc("GET /api/v1/status", b.api("status", func(r *http.Request) (any, error) { return b.status(r.Context()) }))
	mux.HandleFunc("GET /api/v1/tasks/{taskId}", b.api("task", b.serveTaskView))
	mux.HandleFunc("GET /api/v1/builds/{builder}/{number}", b.api("build", b.serveBuildLookup))
	mux.Handle("GET /metrics", b.metrics.handler())
	return mux
}

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "InputError", fmt.Sprintf(format, args...)}
}

func (b *Bridge) api(name string, f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := f(r)
		status := http.StatusOK
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				b.log.Error("master API", "endpoint", name, "err", err)
				ae = &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", err.Error()}
			}
			status, out = ae.status, client.ErrorResponse{Code: ae.code, Message: ae.msg}
		}
		b.metrics.masterCalls.WithLabelValues(name, strconv.Itoa(status)).Inc()
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(out)
	}
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

func (b *Bridge) serveClaim(r *http.Request) (any, error) {
	var req client.ClaimRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.WorkerID == "" {
		return nil, badRequest("workerId is empty: give the agent's worker id")
	}
	if len(req.Builders) == 0 {
		return nil, badRequest("builders is empty: name the builders this agent runs")
	}
	for _, name := range req.Builders {
		if _, ok := b.builders[name]; !ok {
			return nil, badRequest("builders: %q is not defined in builders.yaml: define it or leave it out", name)
		}
	}
	if req.Wait < 0 {
		return nil, badRequest("wait %d is negative: give seconds, at most 60", req.Wait)
	}
	if req.Incarnation == "" {
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		req.Incarnation = hex.EncodeToString(id)
	}
	m := schedulerdb.Master{Name: req.WorkerID, Incarnation: req.Incarnation}
	ctx := r.Context()
	until := time.Now().Add(min(time.Duration(req.Wait)*time.Second, maxClaimWait))
	// A claim whose answer was lost is retried by the agent: give back the
	// build it already holds rather than leave that request claimed by
	// nobody who runs it.
	if c, err := b.heldBuild(ctx, m, req.Builders); err != nil || c != nil {
		if err != nil {
			return nil, err
		}
		return b.startBuild(ctx, m, c)
	}
	for {
		c, err := b.sdb.Claim(ctx, m, req.Builders)
		if err != nil {
			return nil, err
		}
		if c != nil {
			return b.startBuild(ctx, m, c)
		}
		if !time.Now().Add(claimPoll).Before(until) {
			return client.ClaimResponse{}, nil
		}
		select {
		case <-ctx.Done():
			return client.ClaimResponse{}, nil
		case <-time.After(claimPoll):
		}
	}
}

// startBuild publishes started for a claimed request and tells the agent
// what to run. A failed publish does not undo the claim: the log_uploaded
// handler claims the task when started never came, as it must anyway since
// Buildbot's started event can arrive after the build's end.
func (b *Bridge) startBuild(ctx context.Context, m schedulerdb.Master, c *schedulerdb.Claimed) (any, error) {
	props, err := b.sdb.BuildsetProperties(ctx, c.Request.BuildsetID)
	if err != nil {
		return nil, err
	}
	builder := c.Request.BuilderName
	values := make(map[string]json.RawMessage, len(props))
	for name, p := range props {
		values[name] = p.Value
	}
	var taskID string
	_ = json.Unmarshal(values["taskId"], &taskID)
	triples := b.buildProperties(props, builder, c.Build.Number, m.Name, nil)
	key := "build." + BuilderRoutingWord(builder) + "." + strconv.Itoa(c.Build.Number) + ".started"
	status := BuildStatus{BuilderName: builder, Number: c.Build.Number, Properties: triples, Slave: m.Name,
		Reason: "scheduler", Times: []*string{ptr(b.now().UTC().Format("2006-01-02T15:04:05+0000")), nil}}
	// A lost started event is made up for by the finish handler's claim.
	_ = b.publishBuild(ctx, key, m, BuildPayload{Build: status, RequestIDs: []int64{c.Request.ID}})
	def := b.builders[builder].Interpolate(values)
	steps := make([]client.Step, 0, len(def.Steps))
	for _, s := range def.Steps {
		steps = append(steps, client.Step{Name: s.Name, Command: s.Command})
	}
	b.log.Info("build started by agent", "worker", m.Name, "builder", builder, "number", c.Build.Number, "brid", c.Request.ID, "taskId", taskID)
	return client.ClaimResponse{Build: &client.Build{BuildID: c.Build.ID, BuildNumber: c.Build.Number, BuildRequestID: c.Request.ID,
		BuilderName: builder, TaskID: taskID, Incarnation: m.Incarnation, Properties: values, Steps: steps, Env: def.Env,
		MaxRunTime: def.MaxRunTime}}, nil
}

func ptr[T any](v T) *T { return &v }

// buildProperties lists a build's properties as [name, value, source]:
// the buildset's, what the master adds, then extra.
func (b *Bridge) buildProperties(props map[string]schedulerdb.Property, builder string, number int, worker string, extra [][]json.RawMessage) [][]json.RawMessage {
	out := make([][]json.RawMessage, 0, len(props)+3+len(extra))
	for _, name := range sortedKeys(props) {
		p := props[name]
		out = append(out, PropertyTriple(name, p.Value, p.Source))
	}
	out = append(out, PropertyTriple("buildername", builder, "Build"), PropertyTriple("buildnumber", number, "Build"),
		PropertyTriple("slavename", worker, "BuildSlave"))
	return append(out, extra...)
}

func (b *Bridge) publishBuild(ctx context.Context, key string, m schedulerdb.Master, p BuildPayload) error {
	ex := b.cfg.BBListener.Exchange
	body, err := NewBuildMessage(ex, key, m.Name, m.Incarnation, p, b.now())
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = b.bus.Publish(pctx, pulse.Outgoing{Exchange: ex, RoutingKey: key, Body: body})
	}
	if err != nil {
		b.log.Error("publish build event", "routingKey", key, "err", err)
		return fmt.Errorf("publish %s: %w", key, err)
	}
	return nil
}

func (b *Bridge) serveHeartbeat(r *http.Request) (any, error) {
	var req client.HeartbeatRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.WorkerID == "" || req.Incarnation == "" || req.BuildID == 0 {
		return nil, badRequest("workerId, incarnation and buildId are required: pass what the claim returned")
	}
	ctx := r.Context()
	build, err := b.sdb.Build(ctx, req.BuildID)
	if errors.Is(err, schedulerdb.ErrNotFound) {
		return nil, &apiError{http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("build %d does not exist", req.BuildID)}
	}
	if err != nil {
		return nil, err
	}
	held, err := b.sdb.Reclaim(ctx, schedulerdb.Master{Name: req.WorkerID, Incarnation: req.Incarnation}, []int64{build.BRID})
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		return client.HeartbeatResponse{Cancelled: true, Reason: "the build request is complete or claimed by another worker"}, nil
	}
	row, err := b.store.GetTaskByBRID(ctx, build.BRID)
	if errors.Is(err, store.ErrNotFound) {
		return client.HeartbeatResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := b.tc(ctx).Status(row.TaskID)
	if err != nil {
		if tcRefused(err) {
			return client.HeartbeatResponse{}, nil
		}
		return nil, err
	}
	if row.RunID < len(st.Status.Runs) {
		run := st.Status.Runs[row.RunID]
		if run.State == "exception" && (run.ReasonResolved == "canceled" || run.ReasonResolved == "deadline-exceeded") {
			return client.HeartbeatResponse{Cancelled: true, Reason: "task " + row.TaskID + " was resolved " + run.ReasonResolved}, nil
		}
	}
	return client.HeartbeatResponse{}, nil
}

func (b *Bridge) serveFinish(r *http.Request) (any, error) {
	var req client.FinishRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.WorkerID == "" || req.Incarnation == "" || req.BuildID == 0 {
		return nil, badRequest("workerId, incarnation and buildId are required: pass what the claim returned")
	}
	result := schedulerdb.Result(req.Result)
	if !result.Known() {
		return nil, badRequest("result %d is not a Buildbot result: use 0 SUCCESS, 1 WARNINGS, 2 FAILURE, 3 SKIPPED, 4 EXCEPTION, 5 RETRY or 6 CANCELLED", req.Result)
	}
	ctx := r.Context()
	build, err := b.sdb.Build(ctx, req.BuildID)
	if errors.Is(err, schedulerdb.ErrNotFound) {
		return nil, &apiError{http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("build %d does not exist", req.BuildID)}
	}
	if err != nil {
		return nil, err
	}
	m := schedulerdb.Master{Name: req.WorkerID, Incarnation: req.Incarnation}
	done, err := b.sdb.Complete(ctx, m, []int64{build.BRID}, result)
	if err != nil {
		return nil, err
	}
	if len(done) == 0 && build.FinishTime == nil {
		return nil, &apiError{http.StatusConflict, "RequestConflict", fmt.Sprintf("build %d: its request is not held by %s/%s any more", req.BuildID, req.WorkerID, req.Incarnation)}
	}
	// A repeated finish publishes again; the BB listener ignores the copy.
	br, err := b.sdb.BuildRequest(ctx, build.BRID)
	if err != nil {
		return nil, err
	}
	props, err := b.sdb.BuildsetProperties(ctx, br.BuildsetID)
	if err != nil {
		return nil, err
	}
	extra := make([][]json.RawMessage, 0, len(req.Properties)+4)
	for _, name := range sortedKeys(req.Properties) {
		if _, reserved := props[name]; !reserved {
			extra = append(extra, PropertyTriple(name, req.Properties[name], "agent"))
		}
	}
	var logURL any
	if req.LogURL != "" {
		logURL = req.LogURL
	}
	brKey := strconv.FormatInt(br.ID, 10)
	extra = append(extra, PropertyTriple("log_url", logURL, "postrun.py"), PropertyTriple("request_ids", []int64{br.ID}, "postrun.py"),
		PropertyTriple("request_times", map[string]int64{brKey: br.SubmittedAt}, "postrun.py"),
		PropertyTriple("statusdb_id", build.ID, "postrun.py"))
	res := int(result)
	status := BuildStatus{BuilderName: br.BuilderName, Number: build.Number, Properties: b.buildProperties(props, br.BuilderName, build.Number, req.WorkerID, extra),
		Slave: req.WorkerID, Results: &res, Text: []string{result.String()}}
	key := "build." + br.BuilderName + "." + strconv.Itoa(build.Number) + ".log_uploaded"
	// Nothing else would ever resolve the task: a failed publish fails the
	// call, and the agent's retry publishes again.
	if err := b.publishBuild(ctx, key, m, BuildPayload{Build: status}); err != nil {
		return nil, err
	}
	return client.FinishResponse{BuildRequestIDs: done}, nil
}

// heldBuild returns the unfinished build of an incomplete request that
// master m holds among builders, or nil.
func (b *Bridge) heldBuild(ctx context.Context, m schedulerdb.Master, builders []string) (*schedulerdb.Claimed, error) {
	args := []any{m.Name, m.Incarnation}
	marks := make([]string, len(builders))
	for i, name := range builders {
		marks[i] = "?"
		args = append(args, name)
	}
	var buildID, brid int64
	err := b.sdb.SQL().QueryRowContext(ctx, `SELECT bl.id, br.id FROM buildrequests br JOIN builds bl ON bl.brid = br.id
		WHERE br.complete = 0 AND br.claimed_by_name = ? AND br.claimed_by_incarnation = ? AND bl.finish_time IS NULL
		AND br.buildername IN (`+strings.Join(marks, ",")+`) ORDER BY bl.id DESC LIMIT 1`, args...).Scan(&buildID, &brid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for a build %s/%s holds: %w", m.Name, m.Incarnation, err)
	}
	build, err := b.sdb.Build(ctx, buildID)
	if err != nil {
		return nil, err
	}
	req, err := b.sdb.BuildRequest(ctx, brid)
	if err != nil {
		return nil, err
	}
	return &schedulerdb.Claimed{Request: req, Build: build}, nil
}
