package runner

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/provisioner/client"
)

func TestPoolWorkerConfigCannotNameTheSigningKey(t *testing.T) {
	base := &agent.FileConfig{StateDir: "/s", TasksDir: "/t", KillGrace: agent.Duration{}, Capacity: 1,
		ChainOfTrust: agent.FileChainOfTrust{Ed25519SigningKey: "/var/lib/labrunner/ed25519.key"}}
	r := &Runner{baseCfg: base, log: slog.New(slog.DiscardHandler)}
	got := r.assignedConfig(client.Assignment{
		PoolID:       "p",
		TaskQueueID:  "lab/win",
		WorkerConfig: json.RawMessage(`{"capacity": 2, "chainOfTrust": {"ed25519SigningKey": "/etc/shadow"}}`),
	})
	if got.Capacity != 2 {
		t.Fatalf("the pool's workerConfig was not applied: %+v", got)
	}
	if got.ChainOfTrust.Ed25519SigningKey != "/var/lib/labrunner/ed25519.key" {
		t.Errorf("chainOfTrust.ed25519SigningKey = %q: a pool chose the machine's signing key file", got.ChainOfTrust.Ed25519SigningKey)
	}
}

// The task accounts' ids are the machine's: a pool cannot move them
// onto its directory service's or containers' ids.
func TestPoolWorkerConfigCannotSetTaskUserIDs(t *testing.T) {
	base := &agent.FileConfig{StateDir: "/s", TasksDir: "/t", Capacity: 1, TaskUserIDs: "200000-299999"}
	r := &Runner{baseCfg: base, log: slog.New(slog.DiscardHandler)}
	got := r.assignedConfig(client.Assignment{PoolID: "p", TaskQueueID: "lab/hw", WorkerConfig: json.RawMessage(`{"capacity": 2, "taskUserIds": "1000-2000"}`)})
	if got.Capacity != 2 || got.TaskUserIDs != "200000-299999" {
		t.Errorf("capacity %d, taskUserIds %q; want the pool's capacity and the file's ids", got.Capacity, got.TaskUserIDs)
	}
}

func TestChainOfTrustEnvironmentFromRegistration(t *testing.T) {
	r := &Runner{link: &ProvisionerLink{cfg: LinkConfig{Facts: client.Facts{InstanceID: "i-0abc", InstanceType: "m5.xlarge", Region: "us-west-2"}}}}
	env := cot.Environment{PrivateIPAddress: "10.0.0.5"}
	r.describeInstance(&env)
	if env != (cot.Environment{PrivateIPAddress: "10.0.0.5", InstanceID: "i-0abc", InstanceType: "m5.xlarge", Region: "us-west-2"}) {
		t.Errorf("environment %+v", env)
	}
	hw := cot.Environment{PrivateIPAddress: "10.0.0.6"}
	(&Runner{}).describeInstance(&hw)
	if hw != (cot.Environment{PrivateIPAddress: "10.0.0.6"}) {
		t.Errorf("without a provisioner link: %+v", hw)
	}
}

// A pool's workerConfig may set taskUser; a value that is no mode keeps
// the file's.
func TestPoolWorkerConfigSetsTaskUser(t *testing.T) {
	base := &agent.FileConfig{StateDir: "/s", TasksDir: "/t", Capacity: 1, TaskUser: "service"}
	r := &Runner{baseCfg: base, log: slog.New(slog.DiscardHandler)}
	assign := func(wc string) string {
		return r.assignedConfig(client.Assignment{PoolID: "p", TaskQueueID: "lab/hw", WorkerConfig: json.RawMessage(wc)}).TaskUser
	}
	if got := assign(`{"taskUser": "per-task"}`); got != "per-task" {
		t.Errorf("workerConfig taskUser per-task gave %q", got)
	}
	if got := assign(`{"taskUser": "admin"}`); got != "service" {
		t.Errorf("workerConfig taskUser admin gave %q, want the file's service", got)
	}
	if got := assign(`{"capacity": 2}`); got != "service" {
		t.Errorf("workerConfig without taskUser gave %q, want the file's service", got)
	}
}
