package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/provisioner/client"
)

// TestProvisionerServedBesideTheQueue checks that the provisioner answers
// under the stack's root URL, takes the admin token, and sizes a pool from
// the dev queue's pending count.
func TestProvisionerServedBesideTheQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	admin := client.New(s.RootURL, s.AdminToken)
	if _, err := admin.PutPool(ctx, "hello", client.PoolSpec{Source: "taskcluster", TaskQueueID: TaskQueueID, MaxCapacity: 4}); err != nil {
		t.Fatalf("put pool through the devstack root URL: %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := SubmitHelloWorld(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	sizing, err := admin.Sizing(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if sizing.Pending != 3 {
		t.Fatalf("sizing saw %d pending tasks, want the 3 submitted to the dev queue", sizing.Pending)
	}

	if _, err := client.New(s.RootURL, "wrong-token").PutPool(ctx, "other", client.PoolSpec{Source: "taskcluster", TaskQueueID: "x/y", MaxCapacity: 1}); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a wrong admin token must be refused with 401, got %v", err)
	}
	resp, err := http.Get(s.RootURL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %s", resp.Status)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", s.RootURL+"/dashboard", nil)
	req.SetBasicAuth("dev", s.AdminToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dashboard with the admin token as the Basic password: %s", resp.Status)
	}
}

// TestBridgeTurnsTasksIntoBuildRequests checks that the devstack's bridge
// listens on the stack's bus, injects a build request for a bridged task,
// and that the provisioner sizes a Buildbot pool from it.
func TestBridgeTurnsTasksIntoBuildRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Bridge.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	q := tcqueue.New(&s.Credentials, s.RootURL)
	q.Context = ctx
	payload, _ := json.Marshal(map[string]any{
		"buildername": "Linux x86-64 try build",
		"properties":  map[string]any{"product": "firefox"},
		"sourcestamp": map[string]any{"branch": "try"},
	})
	now := time.Now()
	taskID := slugid.Nice()
	if _, err := q.CreateTask(taskID, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: "buildbot-bridge/buildbot-bridge",
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(48 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: "bridged", Description: "a Buildbot build", Owner: "dev@example.com", Source: "https://example.com/"},
		Payload:  payload,
	}); err != nil {
		t.Fatal(err)
	}
	for {
		pending, err := s.Bridge.SchedulerDB().PendingByBuilder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pending["Linux x86-64 try build"] == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no build request for the bridged task; pending %v", pending)
		case <-time.After(20 * time.Millisecond):
		}
	}

	admin := client.New(s.RootURL, s.AdminToken)
	if _, err := admin.PutPool(ctx, "builders", client.PoolSpec{Source: "buildbot", Builders: []string{"Linux x86-64 try build"}, MaxCapacity: 2}); err != nil {
		t.Fatal(err)
	}
	sizing, err := admin.Sizing(ctx, "builders")
	if err != nil {
		t.Fatal(err)
	}
	if sizing.Pending != 1 {
		t.Fatalf("a Buildbot pool's sizing saw %d pending, want the 1 build request", sizing.Pending)
	}
	resp, err := http.Get(s.RootURL + "/api/v1/master/pending")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("master API pending: %s", resp.Status)
	}
}
