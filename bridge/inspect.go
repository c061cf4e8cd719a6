package bridge

// What the bridge knows of one task or one build, for the provisioner's
// "why is this task not running?" (GET /api/v1/tasks/{taskId} and
// GET /api/v1/builds/{builder}/{number}), and the health of its
// databases for the system map (in GET /api/v1/status).

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

// TaskView is the bridge's record of one task.
type TaskView struct {
	Instance string `json:"instance"`
	TaskID   string `json:"taskId"`
	// TaskQueueID is the queue whose tasks this bridge turns into build
	// requests (tcListener provisionerId/workerType).
	TaskQueueID string `json:"taskQueueId"`
	// Row is the bridge DB's row while the bridge tracks the task (nil
	// once the task is resolved, or before task-pending was handled).
	Row *TaskRow `json:"row"`
	// Requests are the build requests injected for the task, oldest first.
	Requests []RequestView `json:"requests"`
}

// TaskRow is a bridge DB tasks row; State is unbound (injection in
// flight), queued (waiting for a Buildbot build) or running (claimed).
type TaskRow struct {
	RunID          int    `json:"runId"`
	BuildRequestID *int64 `json:"buildRequestId"`
	State          string `json:"state"`
	ProcessedDate  int64  `json:"processedDate"`
	TakenUntil     *int64 `json:"takenUntil"`
	LeaseOwner     string `json:"leaseOwner,omitempty"`
}

// RequestView is one SchedulerDB build request with its builds.
type RequestView struct {
	ID          int64  `json:"id"`
	Builder     string `json:"builder"`
	Priority    int    `json:"priority"`
	SubmittedAt int64  `json:"submittedAt"`
	// ClaimedBy is the master (or labrunner worker) holding the request
	// and ClaimedAt when it last claimed it; empty and 0 when unclaimed.
	ClaimedBy  string      `json:"claimedBy,omitempty"`
	ClaimedAt  int64       `json:"claimedAt"`
	Complete   bool        `json:"complete"`
	Result     string      `json:"result,omitempty"`
	CompleteAt *int64      `json:"completeAt,omitempty"`
	Builds     []BuildView `json:"builds"`
}

// BuildView is one Buildbot build of a request.
type BuildView struct {
	Number     int    `json:"number"`
	StartTime  int64  `json:"startTime"`
	FinishTime *int64 `json:"finishTime"`
}

// BuildLookup answers GET /api/v1/builds/{builder}/{number}.
type BuildLookup struct {
	Instance       string      `json:"instance"`
	Builder        string      `json:"builder"`
	Number         int         `json:"number"`
	BuildRequestID int64       `json:"buildRequestId"`
	TaskID         string      `json:"taskId,omitempty"`
	Request        RequestView `json:"request"`
}

// DBHealth is one database as the bridge last reached it.
type DBHealth struct {
	Name      string  `json:"name"`
	Dialect   string  `json:"dialect"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latencyMs"`
	Error     string  `json:"error,omitempty"`
}

func rowState(r store.Task) string {
	switch {
	case r.BuildRequestID == nil:
		return "unbound"
	case r.TakenUntil == nil:
		return "queued"
	}
	return "running"
}

func (b *Bridge) requestView(ctx context.Context, r schedulerdb.BuildRequest) (RequestView, error) {
	v := RequestView{ID: r.ID, Builder: r.BuilderName, Priority: r.Priority, SubmittedAt: r.SubmittedAt, ClaimedAt: r.ClaimedAt,
		ClaimedBy: r.ClaimedByName, Complete: r.Complete, CompleteAt: r.CompleteAt, Builds: []BuildView{}}
	if r.Results != nil {
		v.Result = r.Results.String()
	}
	builds, err := b.sdb.Builds(ctx, r.ID)
	if err != nil {
		return v, err
	}
	for _, bd := range builds {
		v.Builds = append(v.Builds, BuildView{Number: bd.Number, StartTime: bd.StartTime, FinishTime: bd.FinishTime})
	}
	return v, nil
}

func (b *Bridge) serveTaskView(r *http.Request) (any, error) {
	ctx := r.Context()
	taskID := r.PathValue("taskId")
	tc := b.cfg.TCListener
	v := TaskView{Instance: b.cfg.InstanceID, TaskID: taskID, TaskQueueID: tc.ProvisionerID + "/" + tc.WorkerType, Requests: []RequestView{}}
	row, err := b.store.GetTask(ctx, taskID)
	switch {
	case err == nil:
		v.Row = &TaskRow{RunID: row.RunID, BuildRequestID: row.BuildRequestID, State: rowState(row), ProcessedDate: row.ProcessedDate,
			TakenUntil: row.TakenUntil, LeaseOwner: row.LeaseOwner}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	reqs, err := b.sdb.RequestsForTask(ctx, taskID)
	if err != nil {
		return nil, err
	}
	for _, req := range reqs {
		rv, err := b.requestView(ctx, req)
		if err != nil {
			return nil, err
		}
		v.Requests = append(v.Requests, rv)
	}
	return v, nil
}

func (b *Bridge) serveBuildLookup(r *http.Request) (any, error) {
	ctx := r.Context()
	builder := r.PathValue("builder")
	number, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || number < 0 {
		return nil, badRequest("number: %q is not a build number (0 or more)", r.PathValue("number"))
	}
	build, req, err := b.sdb.BuildByNumber(ctx, builder, number)
	if errors.Is(err, schedulerdb.ErrNotFound) {
		return nil, &apiError{http.StatusNotFound, "NotFound", "no build " + strconv.Itoa(number) + " of builder " + builder}
	}
	if err != nil {
		return nil, err
	}
	out := BuildLookup{Instance: b.cfg.InstanceID, Builder: builder, Number: build.Number, BuildRequestID: req.ID}
	bs, err := b.sdb.Buildset(ctx, req.BuildsetID)
	if err != nil {
		return nil, err
	}
	out.TaskID, _ = strings.CutPrefix(bs.ExternalIDString, schedulerdb.ExternalIDPrefix)
	if out.TaskID == bs.ExternalIDString {
		out.TaskID = "" // a request made in Buildbot, not by the bridge
	}
	if out.Request, err = b.requestView(ctx, req); err != nil {
		return nil, err
	}
	return out, nil
}

// databaseHealth asks each database a trivial query and times it.
func (b *Bridge) databaseHealth(ctx context.Context) []DBHealth {
	check := func(name, dialect string, ping func(context.Context) error) DBHealth {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		start := time.Now()
		err := ping(ctx)
		h := DBHealth{Name: name, Dialect: dialect, OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			h.Error = err.Error()
		}
		return h
	}
	return []DBHealth{
		check("bridge DB", b.cfg.BBBDB.Dialect, b.store.SQL().PingContext),
		check("SchedulerDB", b.cfg.SchedulerDB.Dialect, b.sdb.Ping),
	}
}

// pulseQueues asks the broker about this bridge's queues, when the bus can.
func (b *Bridge) pulseQueues(ctx context.Context) ([]pulse.QueueInfo, string) {
	in, ok := b.bus.(pulse.Inspector)
	if !ok {
		return nil, "this Pulse bus cannot report its queues"
	}
	var out []pulse.QueueInfo
	var errs []string
	for _, name := range []string{"task-pending", "task-exception", "started", "log_uploaded", "dead-letter"} {
		q, err := in.InspectQueue(ctx, b.cfg.Pulse.QueueBasename+"/"+name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, q)
	}
	return out, strings.Join(errs, "; ")
}
