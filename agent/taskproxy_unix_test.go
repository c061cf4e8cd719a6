//go:build unix

// With the agent's unix test helpers (helpers_test.go): short claims and the
// recording queue proxy.

package agent

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
)

func withScopes(scopes ...string) func(*tcqueue.TaskDefinitionRequest) {
	return func(d *tcqueue.TaskDefinitionRequest) { d.Scopes = scopes }
}

func TestTaskclusterProxyRenewedOnReclaim(t *testing.T) {
	// 2 s claims: the credentials the proxy started with expire while the
	// task keeps reading through it for 5 s.
	e := newEnv(t, devqueue.Config{ClaimTimeout: 2 * time.Second})
	e.startAgent(e.config())
	id := e.createTask(proxyPayload("proxy-loop", 60), withScopes("queue:get-artifact:private/allowed/*"))
	run := e.waitRun(id, 0)
	log := e.artifactContent(id, 0, BackingLogName)
	if run.State != "completed" {
		t.Fatalf("run resolved %s/%s, want completed; log:\n%s", run.State, run.ReasonResolved, log)
	}
	if !strings.Contains(log, "[taskcluster-proxy] Successfully refreshed taskcluster-proxy credentials: task-client/"+id+"/0/") {
		t.Errorf("log does not show the proxy's credentials refreshed:\n%s", log)
	}
	// Every read was signed by the run's credentials, rotated at reclaims.
	signers := map[string]bool{}
	for _, c := range e.proxy.callsMatching(http.MethodGet, "/task/"+id+"/runs/0/artifacts/private/allowed/b.txt") {
		signers[c.clientID] = true
		if !strings.HasPrefix(c.clientID, "task-client/"+id+"/0/") {
			t.Errorf("a read through the proxy was signed by %q, not the run's credentials", c.clientID)
		}
	}
	if len(signers) < 2 {
		t.Errorf("the task's reads were signed by %d credential set(s), want the rotated ones too", len(signers))
	}
}
