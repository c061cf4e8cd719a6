package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

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
