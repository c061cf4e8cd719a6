package devstack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoSubmitsHelloWorldAndSeesItPending(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := RunDemo(ctx, &out, Options{}, false); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"TASKCLUSTER_ROOT_URL=http://127.0.0.1:",
		"pulse: exchange/taskcluster-queue/v1/task-defined primary.",
		"pulse: exchange/taskcluster-queue/v1/task-pending primary.",
		"status: pending (run 0 scheduled)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStartRejectsBadListenAddress(t *testing.T) {
	_, err := Start(context.Background(), Options{Listen: "127.0.0.1:notaport"})
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("want an error naming --listen, got %v", err)
	}
}
