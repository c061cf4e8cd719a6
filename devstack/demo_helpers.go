package devstack

// The scenario's helpers: submitting tasks and builds, waiting for them
// and for conditions, and finding where a task ran.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/runner"
)

// submitBuild creates a bridge-routed task for the demo's builder.
func (sc *scenario) submitBuild(ctx context.Context, name string) (*DemoTask, error) {
	raw, _ := json.Marshal(map[string]any{"buildername": demoBuilder, "properties": map[string]any{"product": "firefox"}})
	return sc.create(ctx, name, kindBuild, bridgeQueue, raw, "completed")
}

// submit creates a native task for the tests pool.
func (sc *scenario) submit(ctx context.Context, name string, payload json.RawMessage, expected string, deps ...string) (*DemoTask, error) {
	return sc.create(ctx, name, kindNative, TaskQueueID, payload, expected, deps...)
}

func (sc *scenario) create(_ context.Context, name, kind, queue string, payload json.RawMessage, expected string, deps ...string) (*DemoTask, error) {
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID:  queue,
		Created:      tcclient.Time(now),
		Deadline:     tcclient.Time(now.Add(time.Hour)),
		Expires:      tcclient.Time(now.Add(24 * time.Hour)),
		Dependencies: deps,
		Metadata: tcqueue.TaskMetadata{
			Name: "demo: " + name, Description: "A task of the labrunner demo.",
			Owner: "demo@labrunner.invalid", Source: "https://github.com/labrunner/labrunner",
		},
		Payload: payload,
	}
	t := &DemoTask{Name: name, TaskID: slugid.Nice(), Kind: kind, Expected: expected}
	if _, err := sc.q.CreateTask(t.TaskID, def); err != nil {
		return nil, fmt.Errorf("createTask %s: %w", name, err)
	}
	sc.tasks = append(sc.tasks, t)
	return t, nil
}

// waitResolved waits until every task is resolved and the machine that
// ran it has recorded its end (the queue hears of it first).
func (sc *scenario) waitResolved(ctx context.Context, tasks ...*DemoTask) error {
	for _, t := range tasks {
		if err := sc.waitFor(ctx, t.Name+" resolves", func() (bool, error) {
			st, err := sc.q.Status(t.TaskID)
			if err != nil {
				return false, nil
			}
			switch st.Status.State {
			case "completed", "failed", "exception":
				_, rec := sc.ranOn(t.TaskID)
				return rec != nil, nil
			}
			return false, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls cond until it holds, fails (a machine's runner stopped)
// or waitLimit passes; a failure is recorded as an unexpected outcome.
func (sc *scenario) waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(waitLimit)
	for {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil:
			return sc.fail(what, err.Error())
		case time.Now().After(deadline):
			return sc.fail(what, fmt.Sprintf("not within %s", waitLimit))
		}
		select {
		case <-ctx.Done():
			return sc.fail(what, "interrupted")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fail records an unexpected outcome and returns it as an error.
func (sc *scenario) fail(what, detail string) error {
	sc.rep.expect(false, what, detail)
	return errors.New(what + ": " + detail)
}

// machine is the demo machine called name, or nil.
func (sc *scenario) machine(name string) *DemoMachine {
	for _, m := range sc.d.Machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// runningOn is the machine running taskID now, or "".
func (sc *scenario) runningOn(taskID string) string {
	for _, m := range sc.d.Machines {
		st, ok := m.liveStatus()
		if !ok {
			continue
		}
		if slices.ContainsFunc(st.CurrentTasks, func(c runner.CurrentTaskStatus) bool { return c.TaskID == taskID }) {
			return m.Name
		}
	}
	return ""
}

// ranOn is the machine that finished taskID's latest run and its record
// there, from the machines' recent tasks.
func (sc *scenario) ranOn(taskID string) (string, *runner.RecentTaskStatus) {
	var name string
	var best *runner.RecentTaskStatus
	for _, m := range sc.d.Machines {
		st, ok := m.liveStatus()
		if !ok {
			continue
		}
		for i := range st.RecentTasks {
			rec := &st.RecentTasks[i]
			if rec.TaskID == taskID && (best == nil || rec.RunID > best.RunID) {
				name, best = m.Name, rec
			}
		}
	}
	return name, best
}

// summary is the table's rows: each task's result from the queue, its
// machine and duration from the machine's runner.
func (sc *scenario) summary(_ context.Context) []DemoTask {
	out := make([]DemoTask, 0, len(sc.tasks))
	for _, t := range sc.tasks {
		row := *t
		row.Result = "unknown"
		if st, err := sc.q.Status(t.TaskID); err == nil {
			row.Result = st.Status.State
			if n := len(st.Status.Runs); n > 0 && st.Status.State == "exception" {
				row.Result += "/" + st.Status.Runs[n-1].ReasonResolved
			}
		}
		if name, rec := sc.ranOn(t.TaskID); rec != nil {
			row.Machine, row.Duration = name, time.Duration(rec.DurationSeconds*float64(time.Second))
		}
		out = append(out, row)
	}
	return out
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
