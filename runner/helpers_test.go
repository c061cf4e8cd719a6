//go:build unix

package runner

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// testEnv is a devstack, a machine's directories and its configuration.
type testEnv struct {
	t          *testing.T
	stack      *devstack.Stack
	dir        string
	queue      *tcqueue.Queue
	taskQueue  string
	rebootLog  string
	configPath string
	ac         *agent.FileConfig
	rc         *Config
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newEnv starts a devstack and writes a configuration whose runner section
// is the defaults for tests overlaid with runnerKeys.
func newEnv(t *testing.T, runnerKeys map[string]any) *testEnv {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Options{
		Queue:  devqueue.Config{PollWait: 300 * time.Millisecond},
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	e := &testEnv{t: t, stack: s}
	e.dir, err = os.MkdirTemp("", "lr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(e.dir) })
	wt := "wt-" + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(wt) > 38 {
		wt = wt[:38]
	}
	e.taskQueue = "lab/" + wt
	e.rebootLog = filepath.Join(e.dir, "reboots.log")
	rk := map[string]any{
		"reboot":   map[string]any{"command": []string{"/bin/sh", "-c", `echo "$LABRUNNER_REBOOT_REASON" >> ` + e.rebootLog}},
		"checks":   map[string]any{"diskFreeMinMB": 1, "memFreeMinMB": 1},
		"watchdog": map[string]any{"timeout": "0s"},
	}
	merge(rk, runnerKeys)
	cfg := map[string]any{
		"rootURL":      s.RootURL,
		"credentials":  map[string]string{"clientId": s.Credentials.ClientID, "accessToken": s.Credentials.AccessToken},
		"taskQueueId":  e.taskQueue,
		"workerGroup":  "lab",
		"workerId":     "machine-1",
		"stateDir":     filepath.Join(e.dir, "state"),
		"tasksDir":     filepath.Join(e.dir, "tasks"),
		"idlePollWait": "10ms",
		// The tests are about the runner's life, not about task users
		// (taskuser_linux_test.go): tasks run as the test's account.
		"taskUser": "service",
		"runner":   rk,
	}
	b, _ := json.Marshal(cfg) // JSON is YAML
	e.configPath = filepath.Join(e.dir, "runner.yml")
	if err := os.WriteFile(e.configPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.ac, e.rc, err = Load(e.configPath)
	if err != nil {
		t.Fatal(err)
	}
	creds := s.Credentials
	e.queue = tcqueue.New(&creds, s.RootURL)
	return e
}

// merge overlays src on dst, recursing into maps.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// running is a runner started by start.
type running struct {
	once   sync.Once
	r      *Runner
	client *Client
	cancel context.CancelFunc
	done   chan error
}

// start runs a runner until the test ends (or stop) and waits until its
// boot checks are done.
func (e *testEnv) start(opts Options) *running {
	e.t.Helper()
	rn := e.launch(opts)
	e.waitStatus(rn, "runner booted", func(s *Status) bool { return s.State != PhaseBooting })
	return rn
}

// stop stops the runner and waits for it.
func (rn *running) stop(t *testing.T) {
	rn.once.Do(func() {
		rn.cancel()
		select {
		case err := <-rn.done:
			if err != nil {
				t.Errorf("runner: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("runner did not stop")
		}
	})
}

// waitReboots waits until the fake reboot command ran n times.
func (e *testEnv) waitReboots(n int) []string {
	e.t.Helper()
	waitUntil(e.t, itoa(n)+" reboot command calls", func() bool { return len(e.reboots()) >= n }, func() string { return strings.Join(e.reboots(), "\n") })
	return e.reboots()
}

// waitStatus polls the control API until cond holds.
func (e *testEnv) waitStatus(rn *running, what string, cond func(*Status) bool) *Status {
	e.t.Helper()
	var last *Status
	waitUntil(e.t, what, func() bool {
		s, err := rn.client.Status(context.Background())
		if err != nil {
			if !errors.Is(err, ErrNotRunning) {
				e.t.Logf("status: %v", err)
			}
			return false
		}
		last = s
		return cond(s)
	}, func() string { b, _ := json.MarshalIndent(last, "", " "); return string(b) })
	return last
}

// waitNoClaim waits until cond holds with no claim in flight, neither in
// the runner nor still held by the queue: a claim the runner abandons
// when its gate closes ends at the queue only once the server sees the
// connection close, and a task created before then would be claimed.
func (e *testEnv) waitNoClaim(rn *running, what string, cond func(*Status) bool) *Status {
	e.t.Helper()
	s := e.waitStatus(rn, what, func(s *Status) bool { return !s.Polling && cond(s) })
	waitUntil(e.t, "the queue to drop the abandoned claim", func() bool { return e.stack.Queue.WaitingClaims() == 0 }, nil)
	return s
}

// createTask submits a task running sh -c script.
func (e *testEnv) createTask(script string) string {
	e.t.Helper()
	id := slugid.Nice()
	now := time.Now().UTC()
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 120})
	if _, err := e.queue.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: e.taskQueue,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  payload,
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "t", Owner: "t@example.com", Source: "https://example.com"},
	}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// waitResolved waits for the task's first run to be resolved and returns
// "state" or "state/reason".
func (e *testEnv) waitResolved(id string) string {
	e.t.Helper()
	var res string
	waitUntil(e.t, "task "+id+" resolved", func() bool {
		st, err := e.queue.Status(id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r := st.Status.Runs; len(r) > 0 && r[0].State != "pending" && r[0].State != "running" {
			res = r[0].State
			if r[0].ReasonResolved != "" && r[0].State == "exception" {
				res += "/" + r[0].ReasonResolved
			}
			return true
		}
		return false
	}, nil)
	return res
}

// taskState is the state of the task's latest run ("pending" if none).
func (e *testEnv) taskState(id string) string {
	e.t.Helper()
	st, err := e.queue.Status(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Status.State
}

// reboots returns the reasons the fake reboot command recorded: whole
// lines only, as the shell creates the file before it writes the line.
func (e *testEnv) reboots() []string {
	b, err := os.ReadFile(e.rebootLog)
	if err != nil {
		return nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// workerQuarantinedUntil is the queue's quarantineUntil for the machine.
func (e *testEnv) workerQuarantinedUntil() time.Time {
	e.t.Helper()
	pid, wt, _ := strings.Cut(e.taskQueue, "/")
	w, err := e.queue.GetWorker(pid, wt, "lab", "machine-1")
	if err != nil {
		return time.Time{}
	}
	return time.Time(w.QuarantineUntil)
}

// waitUntil polls cond until it holds, failing the test after 60 s.
func waitUntil(t *testing.T, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if detail != nil {
				msg = detail()
			}
			t.Fatalf("timed out waiting for %s\n%s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fixedUptime is an Uptime probe with a settable value.
type fixedUptime struct{ v atomic.Int64 }

func (f *fixedUptime) probe() (time.Duration, error) { return time.Duration(f.v.Load()), nil }
