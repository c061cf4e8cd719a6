package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueueevents"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// TestServeWithRabbitMQ runs `devstack serve --pulse …` as a separate process
// and drives a task through it with client-go, checking the Pulse messages
// that reach RabbitMQ and that SIGTERM stops it cleanly.
func TestServeWithRabbitMQ(t *testing.T) {
	amqpURL := testsvc.AMQPURL(t)
	bin := filepath.Join(t.TempDir(), "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--pulse", amqpURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	env := map[string]string{}
	scanner := bufio.NewScanner(stdout)
	for len(env) < 3 && scanner.Scan() {
		if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
			env[k] = v
		}
	}
	rootURL, clientID, token := env["TASKCLUSTER_ROOT_URL"], env["TASKCLUSTER_CLIENT_ID"], env["TASKCLUSTER_ACCESS_TOKEN"]
	if !strings.HasPrefix(rootURL, "http://127.0.0.1:") || clientID == "" || len(token) < 40 {
		t.Fatalf("serve printed %v; want the root URL, client id and a generated token", env)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := pulse.DialAMQP(ctx, amqpURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()

	workerType := "wt-" + testsvc.Unique()
	var bindings []pulse.Binding
	for _, b := range []interface {
		RoutingKey() string
		ExchangeName() string
	}{
		tcqueueevents.TaskDefined{RoutingKeyKind: "primary", ProvisionerID: "devstack-test", WorkerType: workerType},
		tcqueueevents.TaskPending{RoutingKeyKind: "primary", ProvisionerID: "devstack-test", WorkerType: workerType},
		tcqueueevents.TaskRunning{RoutingKeyKind: "primary", ProvisionerID: "devstack-test", WorkerType: workerType},
		tcqueueevents.TaskCompleted{RoutingKeyKind: "primary", ProvisionerID: "devstack-test", WorkerType: workerType},
	} {
		bindings = append(bindings, pulse.Binding{Exchange: b.ExchangeName(), RoutingKeyPattern: b.RoutingKey()})
	}
	got := make(chan pulse.Delivery, 16)
	ready := make(chan struct{}, 1)
	go func() {
		_ = bus.Consume(ctx, pulse.ConsumeOptions{
			Queue: "queue/devstack-test/" + workerType, Exclusive: true, Prefetch: 1,
			Ready: func() { ready <- struct{}{} },
		}, bindings, func(_ context.Context, d pulse.Delivery) {
			got <- d // before the ack, so that with prefetch 1 order is kept
			_ = d.Ack()
		})
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("consumer never bound")
	}

	q := tcqueue.New(&tcclient.Credentials{ClientID: clientID, AccessToken: token}, rootURL)
	q.Context = ctx
	taskID := slugid.Nice()
	now := time.Now()
	if _, err := q.CreateTask(taskID, &tcqueue.TaskDefinitionRequest{
		ProvisionerID: "devstack-test", WorkerType: workerType,
		Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(48 * time.Hour)),
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "d", Owner: "o@example.com", Source: "https://example.com/"},
		Payload:  json.RawMessage(`{}`),
	}); err != nil {
		t.Fatalf("createTask: %v", err)
	}
	claims, err := q.ClaimWork("devstack-test/"+workerType, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "w1"})
	if err != nil || len(claims.Tasks) != 1 {
		t.Fatalf("claimWork: %v %+v", err, claims)
	}
	claim := claims.Tasks[0]
	worker := tcqueue.New(&tcclient.Credentials{ClientID: claim.Credentials.ClientID, AccessToken: claim.Credentials.AccessToken, Certificate: claim.Credentials.Certificate}, rootURL)
	worker.Context = ctx
	reclaim, err := worker.ReclaimTask(taskID, "0")
	if err != nil {
		t.Fatalf("reclaimTask: %v", err)
	}
	worker = tcqueue.New(&tcclient.Credentials{ClientID: reclaim.Credentials.ClientID, AccessToken: reclaim.Credentials.AccessToken, Certificate: reclaim.Credentials.Certificate}, rootURL)
	worker.Context = ctx
	st, err := worker.ReportCompleted(taskID, "0")
	if err != nil || st.Status.State != "completed" {
		t.Fatalf("reportCompleted: %v %+v", err, st)
	}

	want := []string{"task-defined", "task-pending", "task-running", "task-completed"}
	for _, name := range want {
		select {
		case d := <-got:
			if !strings.HasSuffix(d.Exchange, "/"+name) {
				t.Fatalf("message on %s, want %s (messages must come in order)", d.Exchange, name)
			}
			if !strings.HasPrefix(d.RoutingKey, "primary."+taskID+".") {
				t.Fatalf("routing key %q does not name task %s", d.RoutingKey, taskID)
			}
			var body struct {
				Version int `json:"version"`
				Status  struct {
					TaskID string `json:"taskId"`
				} `json:"status"`
			}
			if err := json.Unmarshal(d.Body, &body); err != nil || body.Version != 1 || body.Status.TaskID != taskID {
				t.Fatalf("%s body %s: %v", name, d.Body, err)
			}
		case <-ctx.Done():
			t.Fatalf("no %s message on RabbitMQ", name)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("devstack serve did not stop cleanly on SIGTERM: %v", err)
	}
}
