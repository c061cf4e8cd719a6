package provisioner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/taskcluster/httpbackoff/v3"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// tcCallTimeout bounds one queue call including client-go's own retries of
// 5xx and connection errors (which would otherwise go on for 15 minutes).
const tcCallTimeout = 30 * time.Second

// taskcluster reaches the queue with each pool's permanent credentials.
type taskcluster struct {
	rootURL string
	perPool map[string]tcclient.Credentials
	def     *tcclient.Credentials
}

func newTaskcluster(cfg Config) *taskcluster {
	return &taskcluster{rootURL: cfg.RootURL, perPool: cfg.Credentials, def: cfg.DefaultCredentials}
}

// credentials returns the permanent credentials for poolID, or nil.
func (t *taskcluster) credentials(poolID string) *tcclient.Credentials {
	if c, ok := t.perPool[poolID]; ok {
		return &c
	}
	return t.def
}

// queue returns a queue client for poolID bound to ctx.
func (t *taskcluster) queue(ctx context.Context, poolID string) (*tcqueue.Queue, error) {
	if t.rootURL == "" {
		return nil, errors.New("no Taskcluster rootUrl configured")
	}
	q := tcqueue.New(t.credentials(poolID), t.rootURL)
	q.Context = ctx
	return q, nil
}

// pending asks the queue how many tasks wait in taskQueueID.
func (t *taskcluster) pending(ctx context.Context, poolID, taskQueueID string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, tcCallTimeout)
	defer cancel()
	q, err := t.queue(ctx, poolID)
	if err != nil {
		return 0, err
	}
	res, err := q.PendingTasks(taskQueueID)
	if err != nil {
		return 0, fmt.Errorf("queue.pendingTasks(%s): %w", taskQueueID, err)
	}
	return res.PendingTasks, nil
}

// quarantine mirrors a quarantine (or its end, with a past until) to the
// queue, declaring the worker first when the queue has never seen it.
func (t *taskcluster) quarantine(ctx context.Context, poolID, taskQueueID, workerGroup, workerID string, until time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, tcCallTimeout)
	defer cancel()
	q, err := t.queue(ctx, poolID)
	if err != nil {
		return err
	}
	prov, wt := splitTaskQueueID(taskQueueID)
	req := &tcqueue.QuarantineWorkerRequest{QuarantineUntil: tcclient.Time(until)}
	_, err = q.QuarantineWorker(prov, wt, workerGroup, workerID, req)
	if httpStatus(err) == http.StatusNotFound {
		expires := tcclient.Time(time.Now().Add(24 * time.Hour))
		if until.After(time.Time(expires)) {
			expires = tcclient.Time(until.Add(time.Hour))
		}
		if _, derr := q.DeclareWorker(prov, wt, workerGroup, workerID, &tcqueue.WorkerRequest{Expires: expires}); derr != nil {
			return fmt.Errorf("queue.declareWorker(%s, %s/%s): %w", taskQueueID, workerGroup, workerID, derr)
		}
		_, err = q.QuarantineWorker(prov, wt, workerGroup, workerID, req)
	}
	if err != nil {
		return fmt.Errorf("queue.quarantineWorker(%s, %s/%s): %w", taskQueueID, workerGroup, workerID, err)
	}
	return nil
}

// taskStatus returns the state and last run's resolution reason of a task.
func (t *taskcluster) taskStatus(ctx context.Context, poolID, taskID string, runID int) (state, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, tcCallTimeout)
	defer cancel()
	q, err := t.queue(ctx, poolID)
	if err != nil {
		return "", "", err
	}
	res, err := q.Status(taskID)
	if err != nil {
		return "", "", fmt.Errorf("queue.status(%s): %w", taskID, err)
	}
	for _, r := range res.Status.Runs {
		if int(r.RunID) == runID {
			return r.State, r.ReasonResolved, nil
		}
	}
	return res.Status.State, "", nil
}

func splitTaskQueueID(id string) (prov, wt string) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return id[:i], id[i+1:]
		}
	}
	return id, ""
}

// httpStatus digs the HTTP status out of a client-go error, 0 if none.
func httpStatus(err error) int {
	var apiErr *tcclient.APICallException
	if errors.As(err, &apiErr) {
		var bad httpbackoff.BadHttpResponseCode
		if errors.As(apiErr.RootCause, &bad) {
			return bad.HttpResponseCode
		}
		if p, ok := apiErr.RootCause.(*httpbackoff.BadHttpResponseCode); ok {
			return p.HttpResponseCode
		}
		if apiErr.CallSummary != nil && apiErr.CallSummary.HTTPResponse != nil {
			return apiErr.CallSummary.HTTPResponse.StatusCode
		}
	}
	return 0
}
