package bridge

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// tc returns the queue client bound to ctx. client-go already retries
// connection errors and 5xx answers with exponential backoff.
func (b *Bridge) tc(ctx context.Context) *tcqueue.Queue {
	q := *b.queue
	q.Context = ctx
	return &q
}

// queueHTTPClient is client-go's HTTP client (no redirects) with room for
// as many idle connections to the queue as handlers run at once: the
// default transport keeps two, so under load most calls dialled anew.
func queueHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 128, 64
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpStatus is the HTTP status of a queue error, 0 when the call did not
// get an answer.
func httpStatus(err error) int {
	var ae *tcclient.APICallException
	if errors.As(err, &ae) && ae.CallSummary != nil && ae.CallSummary.HTTPResponse != nil {
		return ae.CallSummary.HTTPResponse.StatusCode
	}
	return 0
}

// tcRefused reports a definite answer from the queue that repeating the call
// will not change (4xx); other errors are transient and worth a retry of the
// whole message.
func tcRefused(err error) bool {
	s := httpStatus(err)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests
}

func (b *Bridge) claim(ctx context.Context, taskID string, runID int) (*tcqueue.TaskClaimResponse, error) {
	return b.tc(ctx).ClaimTask(taskID, strconv.Itoa(runID), &tcqueue.TaskClaimRequest{
		WorkerGroup: b.cfg.Taskcluster.WorkerGroup, WorkerID: b.cfg.Taskcluster.WorkerID})
}

func (b *Bridge) reportException(ctx context.Context, taskID string, runID int, reason string) error {
	_, err := b.tc(ctx).ReportException(taskID, strconv.Itoa(runID), &tcqueue.TaskExceptionRequest{Reason: reason})
	return err
}

// runState returns the state of run runID of the task's status, "" when the
// run does not exist.
func runState(st *tcqueue.TaskStatusStructure, runID int) string {
	if runID < 0 || runID >= len(st.Runs) {
		return ""
	}
	return st.Runs[runID].State
}
