package provisioner

// "Why is this task not running?" for Buildbot-routed tasks: each bridge
// instance's record of the task (its row, build requests and builds), and
// the task of a Buildbot build asked by builder and number.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// askBridges asks every bridge instance for its view of a.TaskID, in
// parallel; a bridge that fails adds an error, not a failure.
func (s *Server) askBridges(ctx context.Context, a *client.WhyAnswer) {
	views := make([]client.WhyBridge, len(s.cfg.Bridges))
	var wg sync.WaitGroup
	for i, b := range s.cfg.Bridges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i].Name = b.Name
			var v client.BridgeTaskView
			if _, err := s.bridgeGet(ctx, b, "/api/v1/tasks/"+url.PathEscape(a.TaskID), &v); err != nil {
				views[i].Error = err.Error()
				s.probes.note("bridge "+b.Name, err, s.now())
				return
			}
			views[i].View = &v
		}()
	}
	wg.Wait()
	a.Bridges = append(a.Bridges, views...)
	for _, v := range views {
		if v.Error != "" {
			a.Errors = append(a.Errors, v.Error)
		}
	}
}

// findBuild turns a builder/build-number question into its task by
// asking the bridges; false when no task was found (the answer then says
// why).
func (s *Server) findBuild(ctx context.Context, a *client.WhyAnswer) bool {
	b := a.Build
	if len(s.cfg.Bridges) == 0 {
		a.State = "unknown"
		a.Summary = fmt.Sprintf("Build %s #%d cannot be looked up: %v.", b.Builder, b.Number, errNoBridges)
		return false
	}
	var lookups []bridgeBuildLookup
	for _, br := range s.cfg.Bridges {
		var l bridgeBuildLookup
		_, err := s.bridgeGet(ctx, br, "/api/v1/builds/"+url.PathEscape(b.Builder)+"/"+fmt.Sprint(b.Number), &l)
		if errors.Is(err, errBridgeNotFound) {
			continue
		}
		if err != nil {
			a.Errors = append(a.Errors, err.Error())
			s.probes.note("bridge "+br.Name, err, s.now())
			continue
		}
		lookups = append(lookups, l)
		// The bridges share one SchedulerDB: the first answer is everyone's.
		break
	}
	if len(lookups) == 0 {
		a.State = "unknown"
		a.Summary = fmt.Sprintf("No bridge knows build %s #%d.", b.Builder, b.Number)
		if len(a.Errors) > 0 {
			a.Summary = fmt.Sprintf("Build %s #%d could not be looked up: no bridge answered.", b.Builder, b.Number)
		}
		return false
	}
	l := lookups[0]
	if l.TaskID == "" {
		a.State = "buildbot"
		a.Summary = fmt.Sprintf("Build %s #%d (build request %d) was not made by the bridge for a Taskcluster task: Buildbot alone knows it.", b.Builder, b.Number, l.BuildRequestID)
		a.Bridges = append(a.Bridges, client.WhyBridge{Name: l.Instance, View: &client.BridgeTaskView{Instance: l.Instance, Requests: []client.BridgeRequest{l.Request}}})
		return false
	}
	a.TaskID = l.TaskID
	a.Explanation = append(a.Explanation, fmt.Sprintf("Build %s #%d is build request %d of task %s.", b.Builder, b.Number, l.BuildRequestID, l.TaskID))
	return true
}

// bridgeBuildLookup is a bridge's GET /api/v1/builds/{builder}/{number}.
type bridgeBuildLookup struct {
	Instance       string               `json:"instance"`
	Builder        string               `json:"builder"`
	Number         int                  `json:"number"`
	BuildRequestID int64                `json:"buildRequestId"`
	TaskID         string               `json:"taskId"`
	Request        client.BridgeRequest `json:"request"`
}

// bridgeBuilders lists the builders of the task's build requests.
func bridgeBuilders(a *client.WhyAnswer) []string {
	var out []string
	for _, b := range a.Bridges {
		if b.View == nil {
			continue
		}
		for _, r := range b.View.Requests {
			if !slices.Contains(out, r.Builder) {
				out = append(out, r.Builder)
			}
		}
	}
	return out
}

// explainBridge says what the bridges know: whether they turned the task
// into a build request, and where that request is.
func explainBridge(a *client.WhyAnswer, now time.Time) {
	say := func(format string, args ...any) { a.Explanation = append(a.Explanation, fmt.Sprintf(format, args...)) }
	routed := false
	for _, b := range a.Bridges {
		v := b.View
		if v == nil {
			continue
		}
		if a.Task != nil && a.Task.TaskQueueID == v.TaskQueueID {
			routed = true
		}
		if v.Row != nil {
			switch v.Row.State {
			case "unbound":
				say("Bridge %s is injecting its build request (run %d, since %s).", v.Instance, v.Row.RunID, stamp(time.Unix(v.Row.ProcessedDate, 0)))
			case "queued":
				say("Bridge %s: build request %d waits for a Buildbot build (since %s).", v.Instance, *v.Row.BuildRequestID, stamp(time.Unix(v.Row.ProcessedDate, 0)))
			case "running":
				say("Bridge %s: build request %d is running and the bridge keeps its claim (until %s).", v.Instance, *v.Row.BuildRequestID, stamp(time.Unix(*v.Row.TakenUntil, 0)))
			}
		}
		for _, r := range v.Requests {
			line := fmt.Sprintf("Build request %d for builder %s, submitted %s", r.ID, r.Builder, stamp(time.Unix(r.SubmittedAt, 0)))
			switch {
			case r.Complete:
				line += ", complete: " + orDefault(r.Result, "no result")
			case r.ClaimedBy != "" && r.ClaimedAt > 0:
				line += fmt.Sprintf(", claimed by %s %s", r.ClaimedBy, ago(now, time.Unix(r.ClaimedAt, 0)))
			default:
				line += ", not claimed yet"
			}
			for _, bd := range r.Builds {
				line += fmt.Sprintf("; build #%d started %s", bd.Number, stamp(time.Unix(bd.StartTime, 0)))
				if bd.FinishTime != nil {
					line += fmt.Sprintf(", finished %s", stamp(time.Unix(*bd.FinishTime, 0)))
				}
			}
			say("%s.", line)
		}
		// The instances share their databases: one view says it all.
		if v.Row != nil || len(v.Requests) > 0 {
			break
		}
	}
	if routed && a.State == "pending" && len(bridgeBuilders(a)) == 0 {
		say("The task is routed to the bridge (%s) but no bridge has made a build request for it yet: check the bridges' lag and dead letters on the system map.", a.Task.TaskQueueID)
	}
}
