package devstack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoRunsHelloWorldThroughTheAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := RunDemo(ctx, &out, DemoOptions{WorkDir: t.TempDir()}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"TASKCLUSTER_ROOT_URL=http://127.0.0.1:",
		"pulse task-defined",
		"pulse task-pending",
		"pulse task-running",
		"pulse task-completed  task state completed",
		"--- public/logs/live.log ---",
		"hello world",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
}
