//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testrunner"
	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// brokenOnMarker is the black-hole tests' task: it fails on the machine
// whose directory holds a file "broken", and passes elsewhere.
const brokenOnMarker = `d=$(dirname "$(dirname "$TASK_WORKDIR")"); if [ -e "$d/broken" ]; then echo "broken machine"; exit 1; fi; sleep 0.3`

// blackHoleLab is a dev queue, a provisioner with black-hole detection
// and three real runners (bh-0, bh-1, bh-2) in the pool "bh", with bh-0's
// marker file already written.
type blackHoleLab struct {
	stack     *devstack.Stack
	srv       *provisioner.Server
	admin     *client.Client
	q         *tcqueue.Queue
	taskQueue string
	base      string
	marker    string // bh-0's "broken" file
	status    map[string]func() *runner.Status
}

// newBlackHoleLab starts the lab with the pool's black-hole policy.
func newBlackHoleLab(t *testing.T, queuePrefix string, policy client.BlackHolePolicy, mod func(*provisioner.Config)) *blackHoleLab {
	t.Helper()
	log := testLogger(t)
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: log,
		Queue: devqueue.Config{ResolverInterval: 50 * time.Millisecond, DeadlineDelay: -1, PollWait: 300 * time.Millisecond}})
	if err != nil {
		t.Fatalf("devstack: %v", err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	creds := stack.Credentials
	cfg := provisioner.Config{
		DB: filepath.Join(t.TempDir(), "prov.db"), AdminTokens: []string{provAdminToken},
		RootURL: stack.RootURL, DefaultCredentials: &creds,
		AssignInterval: 100 * time.Millisecond, CancelPollInterval: -1, Logger: log.With("component", "provisioner"),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := provisioner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; hs.Close(); _ = srv.Close() })
	l := &blackHoleLab{stack: stack, srv: srv, admin: client.New(hs.URL, provAdminToken, client.WithOperator("e2e")),
		q: tcqueue.New(&creds, stack.RootURL), base: t.TempDir(), status: map[string]func() *runner.Status{}}

	taskQueue := queuePrefix + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(taskQueue) > 38 {
		taskQueue = taskQueue[:38]
	}
	l.taskQueue = "lab/" + taskQueue
	if _, err := l.admin.PutPool(context.Background(), "bh", client.PoolSpec{Source: client.SourceTaskcluster, TaskQueueID: l.taskQueue,
		MinCapacity: 3, MaxCapacity: 3, BlackHole: &policy}); err != nil {
		t.Fatal(err)
	}
	tok, err := l.admin.CreateToken(context.Background(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bh-0", "bh-1", "bh-2"} {
		c := testrunner.Start(t, testrunner.Machine{Name: name, Dir: filepath.Join(l.base, name),
			Runner:  map[string]any{"provisioner": testrunner.Provisioner(t, hs.URL, tok.Token, 100*time.Millisecond)},
			Options: runner.Options{Logger: log.With("component", name), Facts: testrunner.Facts(t, name)}})
		l.status[name] = testrunner.Status(c)
	}
	l.marker = filepath.Join(l.base, "bh-0", "broken")
	if err := os.WriteFile(l.marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// createTask queues brokenOnMarker in the pool's queue; it returns the id.
func (l *blackHoleLab) createTask(t *testing.T) string {
	t.Helper()
	id := slugid.Nice()
	now := time.Now().UTC()
	payload, _ := json.Marshal(map[string]any{"command": [][]string{{"/bin/sh", "-c", brokenOnMarker}}, "maxRunTime": 120})
	if _, err := l.q.CreateTask(id, &tcqueue.TaskDefinitionRequest{TaskQueueID: l.taskQueue,
		Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  payload,
		Metadata: tcqueue.TaskMetadata{Name: "bh", Description: "bh", Owner: "t@example.com", Source: "https://example.com"}}); err != nil {
		t.Fatal(err)
	}
	return id
}
