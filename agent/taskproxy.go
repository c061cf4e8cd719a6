package agent

// features.taskclusterProxy, as generic-worker's taskcluster_proxy.go (at
// v44.23.4) does it:
//
//	before the commands ──tcproxy.Start(run credentials, task scopes +
//	    queue:create-artifact:<taskId>/<runId>)──▶ TASKCLUSTER_PROXY_URL in every command's env
//	each reclaim ──▶ the proxy signs with the new credentials
//	run ends ──▶ proxy closed
//
// No scope is required for the feature itself, as in generic-worker.

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/agent/tcproxy"
)

// errNoRunCredentials refuses the proxy to runs that have no Taskcluster
// credentials to sign with (local files, Buildbot builds).
var errNoRunCredentials = errors.New("payload.features.taskclusterProxy: this run has no Taskcluster credentials for the proxy to sign with (it was not claimed from the queue); remove the feature or run the task through the queue")

// taskProxy is a run's taskcluster-proxy; a nil one is no proxy.
type taskProxy struct {
	p  *tcproxy.Proxy
	tl *taskLog
}

// startTaskProxy starts the run's proxy, authorized for the task's scopes
// and for creating the run's artifacts.
func (a *Agent) startTaskProxy(run Run, tl *taskLog, log *slog.Logger) (*taskProxy, error) {
	creds := run.Credentials()
	if creds.ClientID == "" || creds.AccessToken == "" {
		return nil, errNoRunCredentials
	}
	scopes := append(slices.Clone(run.Task().Scopes), fmt.Sprintf("queue:create-artifact:%s/%d", run.TaskID(), run.RunID()))
	creds.AuthorizedScopes = scopes
	p, err := tcproxy.Start(tcproxy.Config{
		RootURL:     a.cfg.RootURL,
		Credentials: creds,
		Version:     "labrunner " + a.cfg.Version,
		Logger:      log,
	})
	if err != nil {
		return nil, fmt.Errorf("start the taskcluster-proxy: %w", err)
	}
	// The log is public: the address only, never the URL with its secret.
	tl.Printf("[taskcluster-proxy] Serving on http://%s for the task's scopes and queue:create-artifact:%s/%d", p.Addr(), run.TaskID(), run.RunID())
	return &taskProxy{p: p, tl: tl}, nil
}

// url is the value of TASKCLUSTER_PROXY_URL; "" without a proxy.
func (tp *taskProxy) url() string {
	if tp == nil {
		return ""
	}
	return tp.p.URL()
}

// renew hands the proxy the run's credentials after a reclaim.
func (tp *taskProxy) renew(c tcclient.Credentials) {
	if tp == nil {
		return
	}
	tp.p.SetCredentials(c)
	tp.tl.Printf("[taskcluster-proxy] Successfully refreshed taskcluster-proxy credentials: %s", c.ClientID)
}

// stop closes the proxy.
func (tp *taskProxy) stop() {
	if tp == nil {
		return
	}
	if err := tp.p.Close(); err != nil {
		tp.tl.Printf("[taskcluster-proxy] Could not stop the taskcluster-proxy: %v", err)
	}
}
