package devstack

// The demo is `make demo`: the whole system in one process on embedded
// defaults. It starts the devstack, runs an agent for the demo pool beside
// it, submits a hello-world task with the real Taskcluster client, and shows
// what a lab operator and a task author would look at: the Pulse messages,
// the task's resolution and its log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/platform"
)

// The demo pool's names.
const (
	ProvisionerID = "labrunner-dev"
	WorkerType    = "hello"
	TaskQueueID   = ProvisionerID + "/" + WorkerType
)

// DemoOptions configures a demo run.
type DemoOptions struct {
	// System configures the devstack.
	System Options
	// WorkDir holds the agent's state and task directories (default: a new
	// temporary directory, removed at the end).
	WorkDir string
	// Serve keeps the stack and the agent running after the demo until ctx
	// is done.
	Serve bool
}

// RunDemo runs the demo, writing what happens to out.
func RunDemo(ctx context.Context, out io.Writer, opts DemoOptions) error {
	logger := opts.System.Stack.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		opts.System.Stack.Logger = logger
	}
	workDir := opts.WorkDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "labrunner-demo-")
		if err != nil {
			return fmt.Errorf("demo work directory: %w", err)
		}
		defer os.RemoveAll(dir)
		workDir = dir
	}

	s, err := Start(ctx, opts.System)
	if err != nil {
		return err
	}
	defer s.Close()
	PrintEnv(out, s)

	agentCtx, stopAgent := context.WithCancel(ctx)
	agentDone, err := startAgent(agentCtx, s, workDir, logger)
	if err != nil {
		stopAgent()
		return err
	}
	defer func() { stopAgent(); <-agentDone }()
	fmt.Fprintf(out, "\nagent demo/demo-1 is claiming from %s\n", TaskQueueID)

	events, err := watch(ctx, s.Bus)
	if err != nil {
		return err
	}
	taskID, err := SubmitHelloWorld(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "submitted hello-world task %s\n\n", taskID)

	if err := followTask(ctx, out, events, taskID); err != nil {
		return err
	}
	if err := printLog(ctx, out, s, taskID); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ninspect it: curl %s/api/queue/v1/task/%s/status\n", s.RootURL, taskID)
	if !opts.Serve {
		return nil
	}
	fmt.Fprintf(out, `
devstack and the agent keep running; Ctrl-C stops. Submit your own task from
another terminal with the variables above (docs/devstack.md):

  export TASKCLUSTER_ROOT_URL=%s TASKCLUSTER_CLIENT_ID=%s TASKCLUSTER_ACCESS_TOKEN=…
  echo '{"command": [["echo", "my first task"]], "maxRunTime": 60}' | go run ./cmd/devstack task submit -
`, s.RootURL, s.Credentials.ClientID)
	<-ctx.Done()
	return nil
}

// startAgent runs an agent for the demo pool with a live log server on a
// free loopback port; the returned channel closes when the agent has stopped.
func startAgent(ctx context.Context, s *System, workDir string, logger *slog.Logger) (<-chan struct{}, error) {
	journal, err := agent.OpenJournal(filepath.Join(workDir, "state", "journal"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("live log listener: %w", err)
	}
	logs := agent.NewLiveLogServer()
	logServer := &http.Server{Handler: logs, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = logServer.Serve(ln) }()

	cancels := agent.NewPulseCancelWatcher(s.Bus, "queue/demo/cancellations", ProvisionerID, WorkerType, "demo", "demo-1", logger)
	a, err := agent.New(agent.Config{
		Source: agent.NewTCSource(agent.TCSourceConfig{
			RootURL:     s.RootURL,
			Credentials: s.Credentials,
			TaskQueueID: TaskQueueID,
			WorkerGroup: "demo",
			WorkerID:    "demo-1",
			Logger:      logger,
		}),
		Cancel:        cancels,
		Journal:       journal,
		LiveLogServer: logs,
		LiveLogURL:    "http://" + ln.Addr().String(),
		WorkerGroup:   "demo",
		WorkerID:      "demo-1",
		RootURL:       s.RootURL,
		TasksDir:      filepath.Join(workDir, "tasks"),
		Version:       "demo",
		Logger:        logger,
	})
	if err != nil {
		_ = logServer.Close()
		return nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = cancels.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("demo agent", "error", err)
		}
	}()
	go func() { wg.Wait(); _ = logServer.Close(); close(done) }()
	return done, nil
}

// SubmitHelloWorld creates a hello-world task for the demo pool with
// client-go, exactly as a decision task would, and returns its taskId.
func SubmitHelloWorld(ctx context.Context, s *System) (string, error) {
	q := tcqueue.New(&s.Credentials, s.RootURL)
	q.Context = ctx
	taskID := slugid.Nice()
	now := time.Now()
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID: TaskQueueID,
		Created:     tcclient.Time(now),
		Deadline:    tcclient.Time(now.Add(time.Hour)),
		Expires:     tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{
			Name:        "hello world",
			Description: "The labrunner demo's first task.",
			Owner:       "demo@labrunner.invalid",
			Source:      "https://github.com/labrunner/labrunner",
		},
		Payload: helloPayload(),
	}
	if _, err := q.CreateTask(taskID, def); err != nil {
		return "", fmt.Errorf("createTask: %w", err)
	}
	return taskID, nil
}

// helloPayload is a generic-worker payload in this machine's command style.
func helloPayload() json.RawMessage {
	var command any = [][]string{{"echo", "hello world"}}
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		command = []string{"echo hello world"}
	}
	payload, _ := json.Marshal(map[string]any{"command": command, "maxRunTime": 60})
	return payload
}

// watch subscribes to every queue message about the demo pool.
func watch(ctx context.Context, bus pulse.Consumer) (<-chan pulse.Delivery, error) {
	var bindings []pulse.Binding
	for _, b := range []interface {
		RoutingKey() string
		ExchangeName() string
	}{
		tcqueueevents.TaskDefined{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
		tcqueueevents.TaskPending{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
		tcqueueevents.TaskRunning{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
		tcqueueevents.TaskCompleted{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
		tcqueueevents.TaskFailed{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
		tcqueueevents.TaskException{RoutingKeyKind: "primary", ProvisionerID: ProvisionerID, WorkerType: WorkerType},
	} {
		bindings = append(bindings, pulse.Binding{Exchange: b.ExchangeName(), RoutingKeyPattern: b.RoutingKey()})
	}
	events := make(chan pulse.Delivery, 64)
	ready := make(chan struct{})
	var once sync.Once
	opts := pulse.ConsumeOptions{
		Queue: "queue/demo/watch", Exclusive: true, Prefetch: 1,
		Ready: func() { once.Do(func() { close(ready) }) },
	}
	go func() {
		_ = bus.Consume(ctx, opts, bindings, func(_ context.Context, d pulse.Delivery) {
			events <- d // before the ack, so that with prefetch 1 the order is kept
			_ = d.Ack()
		})
	}()
	select {
	case <-ready:
		return events, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New("the Pulse subscription did not bind within 10 s")
	}
}

// followTask prints the Pulse messages about taskID until it resolves.
func followTask(ctx context.Context, out io.Writer, events <-chan pulse.Delivery, taskID string) error {
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case d := <-events:
			var msg struct {
				Status struct {
					TaskID string `json:"taskId"`
					State  string `json:"state"`
				} `json:"status"`
			}
			if json.Unmarshal(d.Body, &msg) != nil || msg.Status.TaskID != taskID {
				continue
			}
			name := d.Exchange[len("exchange/taskcluster-queue/v1/"):]
			fmt.Fprintf(out, "pulse %-15s task state %s\n", name, msg.Status.State)
			switch name {
			case "task-completed":
				return nil
			case "task-failed", "task-exception":
				return fmt.Errorf("the hello-world task ended %s", msg.Status.State)
			}
		case <-timeout:
			return fmt.Errorf("task %s did not resolve within 2 minutes", taskID)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// printLog downloads the task's log artifact, as Treeherder would, and
// prints it.
func printLog(ctx context.Context, out io.Writer, s *System, taskID string) error {
	q := tcqueue.New(nil, s.RootURL)
	q.Context = ctx
	buf, _, _, err := q.DownloadArtifactToBuf(taskID, 0, agent.LiveLogName)
	if err != nil {
		return fmt.Errorf("download %s: %w", agent.LiveLogName, err)
	}
	fmt.Fprintf(out, "\n--- %s ---\n%s", agent.LiveLogName, bytes.TrimLeft(buf, "\n"))
	return nil
}
