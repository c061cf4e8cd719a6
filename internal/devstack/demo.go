package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"

	"github.com/labrunner/labrunner/internal/pulse"
)

// DemoTaskQueueID is the task queue the demo's hello-world task goes to.
const DemoTaskQueueID = "labrunner-dev/hello"

// SubmitHelloWorld creates a hello-world task on the stack with client-go,
// exactly as a decision task would, and returns its taskId.
func SubmitHelloWorld(ctx context.Context, s *Stack) (string, error) {
	q := tcqueue.New(&s.Credentials, s.RootURL)
	q.Context = ctx
	taskID := slugid.Nice()
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"command":    [][]string{{"echo", "hello world"}},
		"maxRunTime": 60,
	})
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID: DemoTaskQueueID,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{
			Name:        "hello world",
			Description: "The labrunner demo's first task.",
			Owner:       "demo@labrunner.invalid",
			Source:      "https://github.com/labrunner/labrunner",
		},
		Payload: payload,
	}
	if _, err := q.CreateTask(taskID, def); err != nil {
		return "", fmt.Errorf("createTask: %w", err)
	}
	return taskID, nil
}

// RunDemo starts a stack, prints how to reach it, submits a hello-world task
// with the real client, and reports the Pulse messages and status that
// follow. With serve it keeps the stack running until ctx is done.
func RunDemo(ctx context.Context, out io.Writer, opts Options, serve bool) error {
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	PrintEnv(out, s)

	events := make(chan string, 16)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	pending := tcqueueevents.TaskPending{RoutingKeyKind: "primary", ProvisionerID: "labrunner-dev", WorkerType: "hello"}
	defined := tcqueueevents.TaskDefined{RoutingKeyKind: "primary", ProvisionerID: "labrunner-dev", WorkerType: "hello"}
	bindings := []pulse.Binding{
		{Exchange: defined.ExchangeName(), RoutingKeyPattern: defined.RoutingKey()},
		{Exchange: pending.ExchangeName(), RoutingKeyPattern: pending.RoutingKey()},
	}
	ready := make(chan struct{})
	var readyOnce sync.Once
	consumeOpts := pulse.ConsumeOptions{Queue: "queue/devstack/demo", Exclusive: true, Prefetch: 1, Ready: func() { readyOnce.Do(func() { close(ready) }) }}
	go func() {
		_ = s.Bus.Consume(watchCtx, consumeOpts, bindings,
			func(_ context.Context, d pulse.Delivery) {
				events <- d.Exchange + " " + d.RoutingKey
				_ = d.Ack()
			})
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the Pulse consumer did not bind within 10 s")
	}

	taskID, err := SubmitHelloWorld(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsubmitted hello-world task %s to %s\n", taskID, DemoTaskQueueID)
	for i := 0; i < 2; i++ {
		select {
		case e := <-events:
			fmt.Fprintf(out, "pulse: %s\n", e)
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no Pulse message for task %s within 5 s", taskID)
		}
	}
	q := tcqueue.New(nil, s.RootURL)
	q.Context = ctx
	st, err := q.Status(taskID)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	fmt.Fprintf(out, "status: %s (run %d %s)\n", st.Status.State, st.Status.Runs[0].RunID, st.Status.Runs[0].ReasonCreated)
	fmt.Fprintf(out, "inspect it: curl %s/api/queue/v1/task/%s/status\n", s.RootURL, taskID)
	if !serve {
		return nil
	}
	fmt.Fprintln(out, "\ndevstack is serving; press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}

// PrintEnv prints the environment a Taskcluster client needs to reach s.
func PrintEnv(out io.Writer, s *Stack) {
	fmt.Fprintf(out, "TASKCLUSTER_ROOT_URL=%s\nTASKCLUSTER_CLIENT_ID=%s\nTASKCLUSTER_ACCESS_TOKEN=%s\n",
		s.RootURL, s.Credentials.ClientID, s.Credentials.AccessToken)
}
