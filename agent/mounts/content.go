package mounts

// Fetching content: another task's artifact through the queue, signed with
// the run's own credentials (so private artifacts need the task's scopes,
// as in generic-worker), or a URL. Both retry transient failures: the
// queue call and the artifact's body through client-go's backoff, a URL
// through the loop below, which also retries a body cut off midway
// (generic-worker's DownloadFile does the same with httpbackoff).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v3"
	"github.com/taskcluster/httpbackoff/v3"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// Fetcher reaches the content of artifact and URL mounts.
type Fetcher struct {
	// RootURL is the Taskcluster deployment's root URL.
	RootURL string
	// Credentials are the run's temporary credentials.
	Credentials tcclient.Credentials
	// HTTPClient is used for URLs and queue calls (default http.DefaultClient).
	HTTPClient *http.Client
	// RetryFor bounds the retries of one fetch (default 5 min).
	RetryFor time.Duration
}

func (f *Fetcher) retryFor() time.Duration {
	if f.RetryFor > 0 {
		return f.RetryFor
	}
	return 5 * time.Minute
}

func (f *Fetcher) client() *http.Client {
	if f.HTTPClient != nil {
		return f.HTTPClient
	}
	return http.DefaultClient
}

// fetcher returns the fetch function for c.
func (f *Fetcher) fetcher(c *Content) fetchFunc {
	if c.Artifact != "" {
		return func(ctx context.Context, w io.WriteSeeker) error { return f.artifact(ctx, c, w) }
	}
	return func(ctx context.Context, w io.WriteSeeker) error { return f.url(ctx, c.URL, w) }
}

// artifact downloads the latest run's artifact, whatever its storage type.
func (f *Fetcher) artifact(ctx context.Context, c *Content, w io.WriteSeeker) error {
	creds := f.Credentials
	var cp *tcclient.Credentials
	if creds.ClientID != "" {
		cp = &creds
	}
	q := tcqueue.New(cp, f.RootURL)
	q.Context = ctx
	q.HTTPClient = f.client()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = f.retryFor()
	q.HTTPBackoffClient = &httpbackoff.Client{BackOffSettings: b}
	if _, _, err := q.DownloadArtifactToWriteSeeker(c.TaskID, -1, c.Artifact, w); err != nil {
		return fmt.Errorf("queue: download artifact %s of task %s: %w", c.Artifact, c.TaskID, err)
	}
	return nil
}

// permanentError is a failure that a retry cannot mend.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// url downloads u, retrying connection errors, 5xx and 429 answers and
// bodies cut short.
func (f *Fetcher) url(ctx context.Context, u string, w io.WriteSeeker) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = f.retryFor()
	var last error
	for try := 1; ; try++ {
		err := f.urlOnce(ctx, u, w)
		if err == nil {
			return nil
		}
		last = err
		var perm permanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("GET %s: gave up after %d tries: %w", u, try, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: %w (last error: %v)", u, ctx.Err(), last)
		case <-time.After(wait):
		}
	}
}

func (f *Fetcher) urlOnce(ctx context.Context, u string, w io.WriteSeeker) error {
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		return permanentError{fmt.Errorf("rewind download file: %w", err)}
	}
	if t, ok := w.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(0); err != nil {
			return permanentError{fmt.Errorf("truncate download file: %w", err)}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return permanentError{fmt.Errorf("GET %s: %w", u, err)}
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return permanentError{fmt.Errorf("GET %s: %s", u, resp.Status)}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: body cut off after %d bytes: %w", u, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("GET %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	return nil
}
