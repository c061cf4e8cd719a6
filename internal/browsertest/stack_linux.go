package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/devstack"
	"github.com/labrunner/labrunner/internal/devqueue"
	tcstack "github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testrunner"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// WaitLimit bounds every wait of the harness: generous, for a loaded
// build machine under -race.
const WaitLimit = 60 * time.Second

// Options shape the system Start runs.
type Options struct {
	// Runners is how many in-process runners to start (default 1).
	Runners int
}

// Env is a running devstack with runners in one pool.
type Env struct {
	T *testing.T
	// System is the devstack; its RootURL also serves the dashboard.
	System *devstack.System
	// Admin is a provisioner client with the admin token.
	Admin *client.Client
	// AdminToken and ReadOnlyToken sign in to the dashboard.
	AdminToken, ReadOnlyToken string
	// PoolID is the runners' pool; TaskQueueID its task queue.
	PoolID, TaskQueueID string
	// Runners are the runners, in start order.
	Runners []*Runner
	// Queue is a queue client with the root credentials.
	Queue *tcqueue.Queue

	log *slog.Logger
}

// Runner is one in-process runner.
type Runner struct {
	// MachineID is its id at the provisioner (also its workerId).
	MachineID string
	// Control is its local control API (status).
	Control *runner.Client
}

// Logger is the harness's logger: the test log with LABRUNNER_TEST_LOG
// set, nothing otherwise.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("LABRUNNER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Start runs a devstack on SQLite and the in-process bus, a Taskcluster
// pool, a read-only token, and opts.Runners runners registered with
// enrollment tokens and idle in the pool; all stop when the test ends.
func Start(t *testing.T, opts Options) *Env {
	t.Helper()
	if opts.Runners <= 0 {
		opts.Runners = 1
	}
	log := Logger(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	sys, err := devstack.Start(ctx, devstack.Options{Dir: t.TempDir(), Stack: tcstack.Options{Logger: log,
		Queue: devqueue.Config{ResolverInterval: 50 * time.Millisecond, PollWait: time.Second}}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { _ = sys.Close() })
	e := &Env{T: t, System: sys, AdminToken: sys.AdminToken, log: log,
		Admin:  client.New(sys.RootURL, sys.AdminToken, client.WithOperator("browsertest")),
		PoolID: "lab-linux", TaskQueueID: "labrunner-e2e/dash-" + testsvc.Unique(),
		Queue: tcqueue.New(&sys.Credentials, sys.RootURL)}
	if _, err := e.Admin.PutPool(ctx, e.PoolID, client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: e.TaskQueueID,
		Description: "Linux lab machines", MinCapacity: opts.Runners, MaxCapacity: opts.Runners + 2}); err != nil {
		t.Fatalf("put pool: %v", err)
	}
	ro, err := e.Admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenReadOnly, Description: "dashboard viewer"})
	if err != nil {
		t.Fatalf("create read-only token: %v", err)
	}
	e.ReadOnlyToken = ro.Token
	for i := range opts.Runners {
		e.Runners = append(e.Runners, e.startRunner(ctx, i))
	}
	for _, r := range e.Runners {
		e.WaitFor("machine "+r.MachineID+" idle in "+e.PoolID, func() bool {
			m, err := e.Admin.GetMachine(ctx, r.MachineID)
			return err == nil && m.PoolID == e.PoolID && m.Online && m.State == client.StateIdle
		})
	}
	return e
}

// startRunner runs runner i, enrolled with a fresh one-use token, and
// waits until it knows its machine id.
func (e *Env) startRunner(ctx context.Context, i int) *Runner {
	t := e.T
	t.Helper()
	tok, err := e.Admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatalf("create enrollment token: %v", err)
	}
	out := &Runner{Control: testrunner.Start(t, testrunner.Machine{Name: strconv.Itoa(i),
		Runner:  map[string]any{"provisioner": testrunner.Provisioner(t, e.System.RootURL, tok.Token, 200*time.Millisecond)},
		Options: runner.Options{Logger: e.log.With("component", fmt.Sprintf("runner-%d", i))}})}
	e.WaitFor(fmt.Sprintf("runner %d to register", i), func() bool {
		s, err := out.Control.Status(ctx)
		if err != nil || s.Provisioner == nil || s.Provisioner.MachineID == "" {
			return false
		}
		out.MachineID = s.Provisioner.MachineID
		return true
	})
	return out
}

// WaitFor polls cond every 50 ms until it holds, failing the test after
// WaitLimit.
func (e *Env) WaitFor(what string, cond func() bool) {
	e.T.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			e.T.Fatalf("timed out after %s waiting for %s", WaitLimit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SubmitTask creates a task on the pool's queue running script with sh
// and returns its taskId.
func (e *Env) SubmitTask(name, script string) string {
	e.T.Helper()
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"sh", "-c", script}}, "maxRunTime": 120})
	now := time.Now()
	id := slugid.Nice()
	if _, err := e.Queue.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: e.TaskQueueID,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: name, Description: "a dashboard test task", Owner: "dashboard@labrunner.invalid", Source: "https://github.com/labrunner/labrunner"},
		Payload:  payload,
	}); err != nil {
		e.T.Fatalf("createTask %s: %v", name, err)
	}
	return id
}

// TaskRun is the state of a task's latest run and the worker it ran on
// ("" while pending).
func (e *Env) TaskRun(taskID string) (state, workerID string) {
	e.T.Helper()
	st, err := e.Queue.Status(taskID)
	if err != nil {
		e.T.Fatalf("status of task %s: %v", taskID, err)
	}
	if n := len(st.Status.Runs); n > 0 {
		r := st.Status.Runs[n-1]
		return r.State, r.WorkerID
	}
	return st.Status.State, ""
}
