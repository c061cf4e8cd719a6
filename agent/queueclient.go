package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v3"
	"github.com/taskcluster/httpbackoff/v3"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// newQueue returns a queue client whose calls end with ctx and retry
// transient failures (5xx, connection errors) with client-go's backoff,
// bounded by maxElapsed so that a dead queue cannot stall a run forever.
func newQueue(ctx context.Context, rootURL string, creds *tcclient.Credentials, httpClient *http.Client, maxElapsed time.Duration) *tcqueue.Queue {
	q := tcqueue.New(creds, rootURL)
	q.Context = ctx
	if httpClient != nil {
		q.HTTPClient = httpClient
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = maxElapsed
	q.HTTPBackoffClient = &httpbackoff.Client{BackOffSettings: b}
	return q
}

// httpStatus is the HTTP status of a failed client-go call, or 0 when the
// call got no response.
func httpStatus(err error) int {
	var apiErr *tcclient.APICallException
	if errors.As(err, &apiErr) {
		if apiErr.CallSummary != nil && apiErr.CallSummary.HTTPResponse != nil {
			return apiErr.CallSummary.HTTPResponse.StatusCode
		}
		var bad httpbackoff.BadHttpResponseCode
		if errors.As(apiErr.RootCause, &bad) {
			return bad.HttpResponseCode
		}
	}
	return 0
}
