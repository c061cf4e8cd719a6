package devstack

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/agent"
	tcstack "github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/platform"
)

// shellPayload is a payload running script with this OS's shell.
func shellPayload(script string) []byte {
	var command any = [][]string{{"/bin/sh", "-c", script}}
	if platform.TaskCommandStyle() == platform.CmdLineCommands {
		command = []string{script}
	}
	b, _ := json.Marshal(map[string]any{"command": command, "maxRunTime": 60})
	return b
}

// TestSubmitTaskByHand: a bare payload, as a person writes one, is created
// in the demo pool, followed to its end and its log printed; a failing
// task ends failed with its log too.
func TestSubmitTaskByHand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Start(ctx, Options{Stack: tcstack.Options{Listen: "127.0.0.1:0", Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	agentCtx, stopAgent := context.WithCancel(ctx)
	done, err := startAgent(agentCtx, s, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopAgent(); <-done }()

	o := SubmitOptions{RootURL: s.RootURL, Credentials: s.Credentials, Poll: 50 * time.Millisecond, Wait: time.Minute}
	for _, tc := range []struct {
		script, state, want string
	}{
		{"echo submitted-by-hand", "completed", "submitted-by-hand"},
		{"echo about-to-fail; exit 3", "failed", "about-to-fail"},
	} {
		var out bytes.Buffer
		res, err := SubmitTask(ctx, &out, shellPayload(tc.script), o)
		if err != nil {
			t.Fatalf("submit %q: %v\n%s", tc.script, err, out.String())
		}
		text := out.String()
		if res.State != tc.state || !strings.Contains(text, "created task "+res.TaskID+" in "+TaskQueueID) ||
			!strings.Contains(text, "task "+tc.state+" on demo/demo-1") || !strings.Contains(text, "--- public/logs/live.log ---") || !strings.Contains(text, tc.want) {
			t.Errorf("submit %q: state %q, output:\n%s", tc.script, res.State, text)
		}
	}
}

func TestBuildTaskDefinition(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	def, err := BuildTaskDefinition([]byte(`{"command": [["true"]], "maxRunTime": 5}`), "lab/q", now)
	if err != nil {
		t.Fatal(err)
	}
	if def.TaskQueueID != "lab/q" || time.Time(def.Deadline) != now.Add(time.Hour) || def.Metadata.Owner == "" || !strings.Contains(string(def.Payload), "maxRunTime") {
		t.Errorf("bare payload wrapped as %+v", def)
	}
	def, err = BuildTaskDefinition([]byte(`{"taskQueueId": "other/q", "payload": {"command": [["true"]], "maxRunTime": 5}}`), "lab/q", now)
	if err != nil || def.TaskQueueID != "other/q" {
		t.Errorf("definition: %+v, %v", def, err)
	}
	for _, bad := range []string{`[1]`, `{"taskQueueId": "a/b"}`, `{"payloud": {}}`} {
		if _, err := BuildTaskDefinition([]byte(bad), "lab/q", now); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// startAgent runs an agent (demo/demo-1) for the demo's tests pool with a live log server on a
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
		// The test is about task submit, not task users.
		TaskUser: platform.TaskUserService,
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
