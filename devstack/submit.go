package devstack

// Submitting a task by hand, for people trying labrunner: `devstack task
// submit FILE` creates the task with client-go (so it works against the
// dev queue and a real Taskcluster deployment alike), follows its state,
// and prints its log.
//
//	read FILE ──▶ task definition, or a bare payload wrapped in one
//	          ──▶ createTask ──▶ poll status until resolved (state changes printed)
//	          ──▶ download public/logs/live_backing.log ──▶ print it

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/agent"
)

// SubmitOptions say where and how a task is submitted.
type SubmitOptions struct {
	// RootURL and Credentials reach the queue (TASKCLUSTER_ROOT_URL,
	// TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN by default).
	RootURL     string
	Credentials tcclient.Credentials
	// TaskQueueID is used when the definition has none (default: the
	// demo's pool).
	TaskQueueID string
	// TaskID is the new task's id (default: a new slug).
	TaskID string
	// Wait bounds how long the task is followed (default 30 minutes).
	Wait time.Duration
	// Poll is the status polling interval (default 500 ms).
	Poll time.Duration
}

// SubmitResult is what became of a submitted task.
type SubmitResult struct {
	TaskID string
	// State is the last run's state: completed, failed or exception.
	State string
	// Reason is the run's reasonResolved.
	Reason string
}

// BuildTaskDefinition turns src, a task definition or a bare payload (an
// object with "command"), into a definition for the queue, filling what
// a person writing one by hand leaves out: the task queue, times and
// metadata.
func BuildTaskDefinition(src []byte, taskQueueID string, now time.Time) (*tcqueue.TaskDefinitionRequest, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(src, &probe); err != nil {
		return nil, fmt.Errorf("the task file is not a JSON object: %w", err)
	}
	var def tcqueue.TaskDefinitionRequest
	if _, bare := probe["command"]; bare {
		def.Payload = json.RawMessage(src)
	} else {
		dec := json.NewDecoder(bytes.NewReader(src))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&def); err != nil {
			return nil, fmt.Errorf("the task file is neither a task definition nor a payload (with \"command\"): %w", err)
		}
		if len(def.Payload) == 0 {
			return nil, errors.New(`the task definition has no "payload"; add one, e.g. {"command": [["echo", "hi"]], "maxRunTime": 60}`)
		}
	}
	if def.TaskQueueID == "" && def.ProvisionerID == "" {
		def.TaskQueueID = taskQueueID
	}
	if time.Time(def.Created).IsZero() {
		def.Created = tcclient.Time(now)
	}
	if time.Time(def.Deadline).IsZero() {
		def.Deadline = tcclient.Time(time.Time(def.Created).Add(time.Hour))
	}
	if time.Time(def.Expires).IsZero() {
		def.Expires = tcclient.Time(time.Time(def.Deadline).Add(24 * time.Hour))
	}
	m := &def.Metadata
	if m.Name == "" {
		m.Name = "submitted by hand"
	}
	if m.Description == "" {
		m.Description = "Submitted with devstack task submit."
	}
	if m.Owner == "" {
		m.Owner = "someone@labrunner.invalid"
	}
	if m.Source == "" {
		m.Source = "https://github.com/labrunner/labrunner"
	}
	return &def, nil
}

// SubmitTask creates the task in src, follows it until it resolves and
// prints its state changes and its log to out.
func SubmitTask(ctx context.Context, out io.Writer, src []byte, o SubmitOptions) (*SubmitResult, error) {
	if o.TaskQueueID == "" {
		o.TaskQueueID = TaskQueueID
	}
	if o.Wait <= 0 {
		o.Wait = 30 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.TaskID == "" {
		o.TaskID = slugid.Nice()
	}
	if o.RootURL == "" {
		return nil, errors.New("no queue: set TASKCLUSTER_ROOT_URL (devstack serve and make demo print it) or pass --root-url")
	}
	def, err := BuildTaskDefinition(src, o.TaskQueueID, time.Now())
	if err != nil {
		return nil, err
	}
	q := tcqueue.New(&o.Credentials, o.RootURL)
	q.Context = ctx
	if _, err := q.CreateTask(o.TaskID, def); err != nil {
		return nil, fmt.Errorf("createTask at %s: %w", o.RootURL, err)
	}
	queue := def.TaskQueueID
	if queue == "" {
		queue = def.ProvisionerID + "/" + def.WorkerType
	}
	fmt.Fprintf(out, "created task %s in %s\n  %s/api/queue/v1/task/%s/status\n", o.TaskID, queue, o.RootURL, o.TaskID)

	res, err := follow(ctx, out, q, o)
	if err != nil {
		return nil, err
	}
	buf, _, _, err := q.DownloadArtifactToBuf(o.TaskID, -1, agent.LiveLogName)
	if err != nil {
		fmt.Fprintf(out, "(no log: %v)\n", err)
		return res, nil
	}
	fmt.Fprintf(out, "\n--- %s ---\n%s", agent.LiveLogName, bytes.TrimLeft(buf, "\n"))
	return res, nil
}

// follow polls the task's status, printing each change, until its last
// run is resolved.
func follow(ctx context.Context, out io.Writer, q *tcqueue.Queue, o SubmitOptions) (*SubmitResult, error) {
	deadline := time.Now().Add(o.Wait)
	last := ""
	for {
		st, err := q.Status(o.TaskID)
		if err != nil {
			return nil, fmt.Errorf("task status at %s: %w", o.RootURL, err)
		}
		state, reason, worker := st.Status.State, "", ""
		if n := len(st.Status.Runs); n > 0 {
			r := st.Status.Runs[n-1]
			reason = r.ReasonResolved
			if r.WorkerID != "" {
				worker = r.WorkerGroup + "/" + r.WorkerID
			}
			state = r.State
		}
		if line := state + " " + worker; line != last {
			last = line
			msg := "task " + state
			if worker != "" {
				msg += " on " + worker
			}
			if reason != "" {
				msg += " (" + reason + ")"
			}
			fmt.Fprintln(out, msg)
		}
		switch state {
		case "completed", "failed", "exception":
			return &SubmitResult{TaskID: o.TaskID, State: state, Reason: reason}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("task %s is still %s after %s; is a runner claiming from its task queue?", o.TaskID, state, o.Wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}
