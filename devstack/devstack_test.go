package devstack

import (
	"context"
	"net/http"
	"testing"
	"time"

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
}
