package provisioner

// "Why is this task not running?": GET /api/v1/why?taskId=… (or
// ?builder=…&build=N) and the dashboard's /dashboard/why. The answer puts
// together what an operator would otherwise ask of several systems:
//
//	queue: task definition + status ─┐
//	bridges: their row, build requests and builds ─┼─▶ state ─▶ pending:  serving pools, each machine and why it is not taking it,
//	registry: pools, machines ───────┘                          machines that fit but serve elsewhere
//	                                                             running:  the machine and for how long (and whether it still says so)
//	                                                             resolved: the runs and the machines that ran them
//	                                                             unscheduled: the dependencies still unresolved

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/provisioner/client"
)

// slugRE is a Taskcluster taskId.
var slugRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$`)

// maxDependencies bounds the dependencies whose state an unscheduled
// task's answer reads.
const maxDependencies = 20

// whyQuery is what was asked: a task, or a Buildbot build.
type whyQuery struct {
	taskID  string
	builder string
	build   int
}

// parseWhyQuery reads ?taskId= or ?builder=&build= (the API), or ?q= (the
// dashboard's one box: a taskId, "builder #N" or "builder/N").
func parseWhyQuery(r *http.Request) (whyQuery, *apiError) {
	v := r.URL.Query()
	bad := func(field, format string, args ...any) *apiError {
		return &apiError{status: http.StatusBadRequest, code: "InvalidRequest", field: field, msg: fmt.Sprintf(format, args...)}
	}
	if q := strings.TrimSpace(v.Get("q")); q != "" {
		if slugRE.MatchString(q) {
			return whyQuery{taskID: q}, nil
		}
		i := strings.LastIndexAny(q, "#/")
		if i > 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(q[i+1:])); err == nil && n >= 0 {
				return whyQuery{builder: strings.TrimSpace(q[:i]), build: n}, nil
			}
		}
		return whyQuery{}, bad("q", "%q is neither a taskId (22 characters) nor a build such as \"linux-build #3\"", q)
	}
	if id := v.Get("taskId"); id != "" {
		if !slugRE.MatchString(id) {
			return whyQuery{}, bad("taskId", "%q is not a Taskcluster taskId (22 characters of A-Z a-z 0-9 _ -)", id)
		}
		return whyQuery{taskID: id}, nil
	}
	if b := v.Get("builder"); b != "" {
		n, err := strconv.Atoi(v.Get("build"))
		if err != nil || n < 0 {
			return whyQuery{}, bad("build", "%q is not a build number (0 or more); send builder and build together", v.Get("build"))
		}
		return whyQuery{builder: b, build: n}, nil
	}
	return whyQuery{}, bad("taskId", "ask about a task (taskId=…) or a Buildbot build (builder=…&build=N)")
}

func (s *Server) getWhy(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	q, aerr := parseWhyQuery(r)
	if aerr != nil {
		return aerr
	}
	a, aerr := s.why(r.Context(), q)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// why answers q.
func (s *Server) why(ctx context.Context, q whyQuery) (*client.WhyAnswer, *apiError) {
	a := &client.WhyAnswer{TaskID: q.taskID, Runs: []client.WhyRun{}, Pools: []client.WhyPool{}, Elsewhere: []client.WhyMachine{},
		Bridges: []client.WhyBridge{}, Explanation: []string{}}
	if q.builder != "" {
		a.Build = &client.BuildRef{Builder: q.builder, Number: q.build}
		if !s.findBuild(ctx, a) {
			return a, nil
		}
	}
	pools, err := s.store.ListPools(ctx)
	if err != nil {
		return nil, storeError("pools", err)
	}
	machines, err := s.store.ListMachines(ctx)
	if err != nil {
		return nil, storeError("machines", err)
	}
	now := s.now()
	byMachine := map[string]*MachineRecord{}
	for _, m := range machines {
		byMachine[m.MachineID] = m
	}
	var def *tcqueue.TaskDefinitionResponse
	var status *tcqueue.TaskStatusResponse
	var wg sync.WaitGroup
	var qerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		def, status, qerr = s.tc.taskAndStatus(ctx, a.TaskID)
	}()
	s.askBridges(ctx, a)
	wg.Wait()
	say := func(format string, args ...any) { a.Explanation = append(a.Explanation, fmt.Sprintf(format, args...)) }
	if qerr != nil {
		a.State = "unknown"
		a.Errors = append(a.Errors, qerr.Error())
		if httpStatus(qerr) == http.StatusNotFound && s.explainCanary(ctx, a) {
			return a, nil
		}
		if httpStatus(qerr) == http.StatusNotFound {
			a.Summary = "The queue does not know task " + a.TaskID + " (a typo, or it expired)."
		} else {
			a.Summary = "The queue could not be asked about task " + a.TaskID + "."
		}
		s.addRecordedRuns(ctx, a, byMachine)
		return a, nil
	}
	a.Task = taskInfo(def)
	a.State = status.Status.State
	builders := bridgeBuilders(a)
	if a.Task.Builder != "" && len(builders) == 0 {
		builders = []string{a.Task.Builder}
	}
	for _, r := range status.Status.Runs {
		a.Runs = append(a.Runs, s.whyRun(r, a, byMachine))
	}
	last := len(a.Runs) - 1
	switch a.State {
	case "unscheduled":
		a.Summary = fmt.Sprintf("Task %s is unscheduled: it waits for its dependencies to complete.", a.TaskID)
		s.explainDependencies(ctx, a, def)
	case "pending":
		since := ""
		if last >= 0 && a.Runs[last].Scheduled != nil {
			since = " since " + stamp(*a.Runs[last].Scheduled) + " (" + now.Sub(*a.Runs[last].Scheduled).Round(time.Second).String() + ")"
		}
		a.Pools = servingPools(pools, a.Task.TaskQueueID, builders)
		a.Summary = fmt.Sprintf("Task %s is pending on %s%s.", a.TaskID, a.Task.TaskQueueID, since)
		explainBridge(a, now)
		if len(a.Pools) == 0 {
			what := "task queue " + a.Task.TaskQueueID
			if len(builders) > 0 {
				what += " or builder " + strings.Join(builders, ", ")
			}
			a.Summary += " No labrunner pool serves " + what + "."
			say("No pool has source taskcluster or both with taskQueueId %s%s: no labrunner machine will take it. Add or fix a pool (provisioner pools apply), or check that another worker serves that queue.",
				a.Task.TaskQueueID, map[bool]string{true: " nor builders " + strings.Join(builders, ", "), false: ""}[len(builders) > 0])
		}
		a.Explanation = append(a.Explanation, s.explainPools(a, pools, machines, now)...)
		if len(a.Pools) > 0 {
			a.Summary += " " + poolsSummary(a.Pools)
		}
	case "running":
		if last >= 0 {
			s.explainRunning(a, &a.Runs[last], byMachine, now)
		}
		explainBridge(a, now)
	default:
		a.Summary = fmt.Sprintf("Task %s is resolved: %s.", a.TaskID, a.State)
		if last >= 0 && a.Runs[last].ReasonResolved != "" {
			a.Summary = fmt.Sprintf("Task %s is resolved: %s (%s).", a.TaskID, a.State, a.Runs[last].ReasonResolved)
		}
		for _, r := range a.Runs {
			say("Run %d: %s%s%s.", r.RunID, r.State, optional(" (%s)", r.ReasonResolved), optional(" on %s", runnerOf(r)))
		}
		explainBridge(a, now)
	}
	if a.Task.Deadline.Before(now) && (a.State == "pending" || a.State == "unscheduled") {
		say("Its deadline (%s) has passed: the queue will resolve it as deadline-exceeded.", stamp(a.Task.Deadline))
	}
	return a, nil
}

func optional(format, v string) string {
	if v == "" {
		return ""
	}
	return fmt.Sprintf(format, v)
}

func runnerOf(r client.WhyRun) string {
	switch {
	case r.MachineID != "":
		return "machine " + r.MachineID
	case r.WorkerID != "":
		return "worker " + r.WorkerGroup + "/" + r.WorkerID
	}
	return ""
}

func poolsSummary(ps []client.WhyPool) string {
	var c client.WhyCounts
	for _, p := range ps {
		c.Assigned += p.Counts.Assigned
		c.Idle += p.Counts.Idle
		c.Busy += p.Counts.Busy
		c.Quarantined += p.Counts.Quarantined
		c.Offline += p.Counts.Offline
	}
	return fmt.Sprintf("%s could take it: %d idle, %d busy, %d quarantined, %d offline.", count(c.Assigned, "machine", "machines"), c.Idle, c.Busy, c.Quarantined, c.Offline)
}

// taskInfo keeps what the answer shows of a task's definition.
func taskInfo(def *tcqueue.TaskDefinitionResponse) *client.WhyTask {
	t := &client.WhyTask{Name: def.Metadata.Name, TaskQueueID: def.TaskQueueID, Priority: def.Priority,
		Created: time.Time(def.Created).UTC(), Deadline: time.Time(def.Deadline).UTC(), Dependencies: def.Dependencies}
	if t.TaskQueueID == "" && def.ProvisionerID != "" {
		t.TaskQueueID = def.ProvisionerID + "/" + def.WorkerType
	}
	var p struct {
		Buildername string `json:"buildername"`
	}
	if json.Unmarshal(def.Payload, &p) == nil {
		t.Builder = p.Buildername
	}
	return t
}

func timeOrNil(t tcclient.Time) *time.Time {
	v := time.Time(t)
	if v.IsZero() {
		return nil
	}
	v = v.UTC()
	return &v
}

// whyRun is a queue run with the labrunner machine that ran it: the
// worker itself, or for a bridged task the worker that claimed the
// build request.
func (s *Server) whyRun(r tcqueue.RunInformation, a *client.WhyAnswer, machines map[string]*MachineRecord) client.WhyRun {
	w := client.WhyRun{RunID: int(r.RunID), State: r.State, ReasonCreated: r.ReasonCreated, ReasonResolved: r.ReasonResolved,
		Scheduled: timeOrNil(r.Scheduled), Started: timeOrNil(r.Started), Resolved: timeOrNil(r.Resolved), WorkerGroup: r.WorkerGroup, WorkerID: r.WorkerID}
	if _, ok := machines[r.WorkerID]; ok {
		w.MachineID = r.WorkerID
		return w
	}
	// A bridged run's worker is the bridge; its builds were claimed by
	// agents named by their worker id, which is the machine id.
	for _, b := range a.Bridges {
		if b.View == nil {
			continue
		}
		for _, req := range b.View.Requests {
			if _, ok := machines[req.ClaimedBy]; ok && req.ClaimedBy != "" {
				if b.View.Row == nil || b.View.Row.RunID == w.RunID || len(b.View.Requests) == 1 {
					w.MachineID = req.ClaimedBy
				}
			}
		}
	}
	return w
}

// explainRunning says where the task runs and whether that machine still
// reports it.
func (s *Server) explainRunning(a *client.WhyAnswer, r *client.WhyRun, machines map[string]*MachineRecord, now time.Time) {
	since := ""
	if r.Started != nil {
		since = " for " + now.Sub(*r.Started).Round(time.Second).String() + " (since " + stamp(*r.Started) + ")"
	}
	m := machines[r.MachineID]
	if m == nil {
		a.Summary = fmt.Sprintf("Task %s is running (run %d) on worker %s/%s%s, which is not a labrunner machine.", a.TaskID, r.RunID, r.WorkerGroup, r.WorkerID, since)
		return
	}
	a.Summary = fmt.Sprintf("Task %s is running (run %d) on machine %s (pool %s)%s.", a.TaskID, r.RunID, m.MachineID, orDefault(m.PoolID, "none"), since)
	w := whyMachine(m, now, s.cfg.OfflineAfter)
	switch {
	case m.CurrentTask == nil || m.CurrentTask.TaskID != a.TaskID:
		now := "no task"
		if m.CurrentTask != nil {
			now = "task " + m.CurrentTask.TaskID
		}
		a.Explanation = append(a.Explanation, fmt.Sprintf("But %s reports %s (%s): the run may have been lost; the queue resolves it claim-expired when its claim runs out.", m.MachineID, now, w.Reason))
	case w.Status == "offline" || w.Status == "quarantined":
		a.Explanation = append(a.Explanation, fmt.Sprintf("%s is %s.", m.MachineID, w.Reason))
	default:
		a.Explanation = append(a.Explanation, fmt.Sprintf("%s reports it (%s).", m.MachineID, w.Reason))
	}
}

// explainDependencies lists the dependencies not yet completed.
func (s *Server) explainDependencies(ctx context.Context, a *client.WhyAnswer, def *tcqueue.TaskDefinitionResponse) {
	deps := def.Dependencies
	if len(deps) > maxDependencies {
		a.Explanation = append(a.Explanation, fmt.Sprintf("It has %d dependencies; the first %d are checked.", len(deps), maxDependencies))
		deps = deps[:maxDependencies]
	}
	states := make([]string, len(deps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, st, err := s.tc.taskAndStatus(ctx, d)
			if err != nil {
				states[i] = "unknown (" + err.Error() + ")"
				return
			}
			states[i] = st.Status.State
		}()
	}
	wg.Wait()
	waiting := 0
	for i, d := range deps {
		if states[i] != "completed" {
			waiting++
			a.Explanation = append(a.Explanation, fmt.Sprintf("Dependency %s is %s.", d, states[i]))
		}
	}
	if waiting == 0 && len(deps) > 0 {
		a.Explanation = append(a.Explanation, "Every dependency checked is completed: the queue schedules it shortly.")
	}
	if def.Requires == "all-resolved" {
		a.Explanation = append(a.Explanation, "It requires all-resolved: a failed dependency also lets it run.")
	}
}

// addRecordedRuns adds the runs machines reported, when the queue cannot
// say, so the answer still names the machines that ran it.
func (s *Server) addRecordedRuns(ctx context.Context, a *client.WhyAnswer, machines map[string]*MachineRecord) {
	hs := s.historyStore()
	if hs == nil {
		return
	}
	runs, err := hs.TaskRunsOf(ctx, a.TaskID)
	if err != nil {
		a.Errors = append(a.Errors, err.Error())
		return
	}
	for _, r := range runs {
		st, fin := r.Started, r.Finished
		a.Runs = append(a.Runs, client.WhyRun{RunID: r.RunID, State: "reported finished by its machine", Started: &st, Resolved: &fin, MachineID: r.MachineID})
		a.Explanation = append(a.Explanation, fmt.Sprintf("Machine %s ran run %d from %s to %s.", r.MachineID, r.RunID, stamp(st), stamp(fin)))
	}
	for _, m := range machines {
		if m.CurrentTask != nil && m.CurrentTask.TaskID == a.TaskID {
			a.Explanation = append(a.Explanation, fmt.Sprintf("Machine %s reports running it now (run %d).", m.MachineID, m.CurrentTask.RunID))
		}
	}
}

// taskAndStatus reads a task's definition and status with the default
// credentials (neither call needs scopes).
func (t *taskcluster) taskAndStatus(ctx context.Context, taskID string) (*tcqueue.TaskDefinitionResponse, *tcqueue.TaskStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, tcCallTimeout)
	defer cancel()
	q, err := t.queue(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	def, err := q.Task(taskID)
	if err != nil {
		return nil, nil, fmt.Errorf("queue.task(%s): %w", taskID, err)
	}
	st, err := q.Status(taskID)
	if err != nil {
		return nil, nil, fmt.Errorf("queue.status(%s): %w", taskID, err)
	}
	return def, st, nil
}

var errNoBridges = errors.New("no bridge configured (bridges: in the provisioner's config)")
