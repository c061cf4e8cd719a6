package bridge

// Cancelling in Buildbot (docs/bridge.md, "Cancelling in Buildbot"): through
// BuildAPI self-serve when selfserve_url is set, otherwise by applying the
// self-serve agent's effect to the SchedulerDB directly. A running build cancelled
// directly is stopped by its agent, which learns of it from the master API
// heartbeat (the task's run is resolved canceled or deadline-exceeded).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/labrunner/labrunner/bridge/schedulerdb"
)

// canceller cancels build requests and builds in Buildbot.
type canceller interface {
	// cancelRequest cancels a request that has not started; running reports
	// that a master claimed it meanwhile, so its builds must be cancelled.
	cancelRequest(ctx context.Context, branch string, brid int64) (running bool, err error)
	// cancelBuild stops a running build.
	cancelBuild(ctx context.Context, branch string, buildID int64) error
}

// selfServe calls BuildAPI: DELETE {root}/{branch}/request/{brid} and
// DELETE {root}/{branch}/build/{id} with X-Remote-User: buildbot-bridge.
type selfServe struct {
	root   string
	client *retryablehttp.Client
}

func newRetryingClient(log *slog.Logger) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.RetryMax = 5
	c.RetryWaitMin = 200 * time.Millisecond
	c.RetryWaitMax = 5 * time.Second
	c.HTTPClient.Timeout = 60 * time.Second
	c.Logger = slogLeveled{log}
	return c
}

// slogLeveled lets go-retryablehttp log through slog.
type slogLeveled struct{ l *slog.Logger }

func (s slogLeveled) Error(msg string, kv ...any) { s.l.Error(msg, kv...) }
func (s slogLeveled) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s slogLeveled) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }
func (s slogLeveled) Warn(msg string, kv ...any)  { s.l.Warn(msg, kv...) }

func (s *selfServe) del(ctx context.Context, path string) (int, error) {
	u := strings.TrimSuffix(s.root, "/") + "/" + path
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return 0, fmt.Errorf("self-serve: %w", err)
	}
	req.Header.Set("X-Remote-User", "buildbot-bridge")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("self-serve DELETE %s: %w", u, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("self-serve DELETE %s: HTTP %d", u, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func (s *selfServe) cancelRequest(ctx context.Context, branch string, brid int64) (bool, error) {
	code, err := s.del(ctx, branch+"/request/"+strconv.FormatInt(brid, 10))
	if code == http.StatusNotFound {
		// Self-serve often answers 404 for a request scheduled moments ago;
		// BBB ignored it too.
		return false, nil
	}
	return false, err
}

func (s *selfServe) cancelBuild(ctx context.Context, branch string, buildID int64) error {
	_, err := s.del(ctx, branch+"/build/"+strconv.FormatInt(buildID, 10))
	return err
}

// directCancel applies self-serve's agent to the SchedulerDB.
type directCancel struct{ sdb *schedulerdb.DB }

func (d *directCancel) cancelRequest(ctx context.Context, _ string, brid int64) (bool, error) {
	out, err := d.sdb.CancelRequest(ctx, brid)
	if errors.Is(err, schedulerdb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return out.State == schedulerdb.Running, nil
}

func (d *directCancel) cancelBuild(ctx context.Context, _ string, buildID int64) error {
	_, err := d.sdb.CancelBuild(ctx, buildID)
	if errors.Is(err, schedulerdb.ErrNotFound) || errors.Is(err, schedulerdb.ErrNotClaimed) {
		return nil
	}
	return err
}
