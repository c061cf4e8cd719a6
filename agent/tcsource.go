package agent

// The Taskcluster source claims with queue.claimWork, a long poll: the
// queue answers as soon as a task is pending, or with nothing after about
// 20 s. Each claimed run carries temporary credentials valid until
// takenUntil; every reclaim returns fresh ones, which replace the old for
// all later calls about that run.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// ClaimPollTimeout bounds one claimWork long poll; the queue answers within
// about 20 s, and client-go has no HTTP timeout of its own.
const ClaimPollTimeout = 30 * time.Second

// TCSourceConfig configures a TCSource.
type TCSourceConfig struct {
	// RootURL is the Taskcluster deployment's root URL.
	RootURL string
	// Credentials are the worker's credentials, used for claimWork.
	Credentials tcclient.Credentials
	// CredentialsFunc, when set, replaces Credentials: it is asked before
	// each claimWork, so that rotated credentials take effect at once.
	CredentialsFunc func() tcclient.Credentials
	// TaskQueueID is "<provisionerId>/<workerType>".
	TaskQueueID string
	// WorkerGroup and WorkerID name this worker to the queue.
	WorkerGroup, WorkerID string
	// HTTPClient replaces the default HTTP client (tests put a proxy here).
	HTTPClient *http.Client
	// RetryFor bounds how long one queue call retries transient errors
	// (default 5 min).
	RetryFor time.Duration
	// PollTimeout bounds one claimWork long poll (default ClaimPollTimeout).
	PollTimeout time.Duration
	// Logger receives the source's own messages (default slog.Default()).
	Logger *slog.Logger
}

// TCSource claims native Taskcluster tasks from the queue.
type TCSource struct {
	cfg TCSourceConfig
}

// NewTCSource returns a Taskcluster source.
func NewTCSource(cfg TCSourceConfig) *TCSource {
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = ClaimPollTimeout
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &TCSource{cfg: cfg}
}

// Claim long-polls claimWork for up to max tasks.
//
// When ctx is done while the poll is in flight (a drain, a move or a
// shutdown), the poll is abandoned at once unless the queue's answer has
// begun to arrive (claimguard.go). An answer that arrived is read, and
// its tasks, claimed after the stop, are given back: resolved
// exception/worker-shutdown, which the queue retries at once with a new
// run. A task the queue claimed for a poll whose answer was cut off is
// not known to the agent: it is resolved claim-expired when its claim
// (takenUntil, 20 minutes by default) runs out, and retried then.
func (s *TCSource) Claim(ctx context.Context, max int) ([]Run, error) {
	if ctx.Err() != nil {
		return nil, nil
	}
	pollCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PollTimeout)
	defer cancel()
	guard := &claimGuard{cancel: cancel}
	creds := s.cfg.Credentials
	if s.cfg.CredentialsFunc != nil {
		creds = s.cfg.CredentialsFunc()
	}
	type answer struct {
		resp *tcqueue.ClaimWorkResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		q := newQueue(pollCtx, s.cfg.RootURL, &creds, guardedClient(s.cfg.HTTPClient, guard), s.cfg.RetryFor)
		resp, err := q.ClaimWork(s.cfg.TaskQueueID, &tcqueue.ClaimWorkRequest{
			Tasks:       int64(max),
			WorkerGroup: s.cfg.WorkerGroup,
			WorkerID:    s.cfg.WorkerID,
		})
		done <- answer{resp, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		if guard.stop() {
			// No answer had begun: the call ends on its own (a retry
			// sleeping in client-go's backoff finds its context cancelled).
			return nil, nil
		}
		a = <-done
	}
	if a.err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		if errors.Is(a.err, context.DeadlineExceeded) {
			// The queue answers an empty poll within ~20 s: no answer in
			// time means it is unreachable or failing (client-go was
			// retrying).
			if last := guard.lastFailure(); last != nil {
				return nil, fmt.Errorf("claimWork on %s at %s: no answer within %s; last try: %w", s.cfg.TaskQueueID, s.cfg.RootURL, s.cfg.PollTimeout, last)
			}
			return nil, fmt.Errorf("claimWork on %s at %s: no answer within %s: %w", s.cfg.TaskQueueID, s.cfg.RootURL, s.cfg.PollTimeout, a.err)
		}
		return nil, fmt.Errorf("claimWork on %s at %s: %w", s.cfg.TaskQueueID, s.cfg.RootURL, a.err)
	}
	s.cfg.Logger.Debug("claimWork answered", "taskQueueId", s.cfg.TaskQueueID, "asked", max, "claimed", len(a.resp.Tasks))
	runs := make([]Run, 0, len(a.resp.Tasks))
	for _, c := range a.resp.Tasks {
		runs = append(runs, s.newRun(c))
	}
	if ctx.Err() != nil && len(runs) > 0 {
		s.giveBack(ctx, runs)
		return nil, nil
	}
	return runs, nil
}

// giveBack resolves runs claimed after the claim was abandoned
// exception/worker-shutdown, so that the queue retries them at once; it
// takes at most GiveBackTimeout.
func (s *TCSource) giveBack(ctx context.Context, runs []Run) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), GiveBackTimeout)
	defer cancel()
	for _, r := range runs {
		if err := r.Resolve(gctx, Exception(ReasonWorkerShutdown)); err != nil {
			s.cfg.Logger.Warn("could not give back a task claimed as the claim was abandoned; it is retried when its claim expires",
				"taskId", r.TaskID(), "runId", r.RunID(), "error", err)
			continue
		}
		s.cfg.Logger.Info("gave back (exception/worker-shutdown) a task claimed as the claim was abandoned", "taskId", r.TaskID(), "runId", r.RunID())
	}
}

func (s *TCSource) newRun(c tcqueue.TaskClaim) *tcRun {
	task := c.Task
	return &tcRun{
		src:        s,
		taskID:     c.Status.TaskID,
		runID:      int(c.RunID),
		task:       &task,
		takenUntil: time.Time(c.TakenUntil),
		creds:      credsOf(c.Credentials),
	}
}

// ResumeRun rebuilds a run from a journal entry, to resolve it after a
// restart.
func (s *TCSource) ResumeRun(e JournalEntry) Run {
	return &tcRun{
		src:        s,
		taskID:     e.TaskID,
		runID:      e.RunID,
		task:       &tcqueue.TaskDefinitionResponse{},
		takenUntil: e.TakenUntil,
		creds:      e.Credentials,
	}
}

func credsOf(c tcqueue.TaskCredentials) tcclient.Credentials {
	return tcclient.Credentials{ClientID: c.ClientID, AccessToken: c.AccessToken, Certificate: c.Certificate}
}

// tcRun is a run claimed from the queue.
type tcRun struct {
	src    *TCSource
	taskID string
	runID  int
	task   *tcqueue.TaskDefinitionResponse

	mu         sync.Mutex
	takenUntil time.Time
	creds      tcclient.Credentials
}

// TaskID is the claimed task.
func (r *tcRun) TaskID() string { return r.taskID }

// RunID is the claimed run.
func (r *tcRun) RunID() int { return r.runID }

// Task is the definition the claim returned.
func (r *tcRun) Task() *tcqueue.TaskDefinitionResponse { return r.task }

// TakenUntil is the end of the latest claim or reclaim.
func (r *tcRun) TakenUntil() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.takenUntil
}

// Credentials are the latest temporary credentials for the run.
func (r *tcRun) Credentials() tcclient.Credentials {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creds
}

// queue is a client with the run's current credentials.
func (r *tcRun) queue(ctx context.Context) *tcqueue.Queue {
	creds := r.Credentials()
	return newQueue(ctx, r.src.cfg.RootURL, &creds, r.src.cfg.HTTPClient, r.src.cfg.RetryFor)
}

func (r *tcRun) runIDString() string { return strconv.Itoa(r.runID) }

// Reclaim extends the claim; the answer's credentials replace the old.
func (r *tcRun) Reclaim(ctx context.Context) (time.Time, error) {
	resp, err := r.queue(ctx).ReclaimTask(r.taskID, r.runIDString())
	if err != nil {
		if httpStatus(err) == http.StatusConflict {
			return time.Time{}, fmt.Errorf("reclaim %s/%d: %w", r.taskID, r.runID, ErrRunGone)
		}
		return time.Time{}, fmt.Errorf("reclaim %s/%d: %w", r.taskID, r.runID, err)
	}
	until := time.Time(resp.TakenUntil)
	r.mu.Lock()
	r.takenUntil = until
	r.creds = credsOf(resp.Credentials)
	r.mu.Unlock()
	return until, nil
}

// Publish creates the artifact and, for a file, uploads it to its putUrl.
func (r *tcRun) Publish(ctx context.Context, a RunArtifact) error {
	body, err := json.Marshal(a.request())
	if err != nil {
		return fmt.Errorf("encode artifact %s: %w", a.Name, err)
	}
	par := tcqueue.PostArtifactRequest(body)
	resp, err := r.queue(ctx).CreateArtifact(r.taskID, r.runIDString(), a.Name, &par)
	if err != nil {
		return &artifactError{name: a.Name, status: httpStatus(err), err: err}
	}
	if a.Kind != KindFile {
		return nil
	}
	var s3 tcqueue.S3ArtifactResponse
	if err := json.Unmarshal(*resp, &s3); err != nil {
		return fmt.Errorf("decode createArtifact answer for %s: %w", a.Name, err)
	}
	if err := putFile(ctx, r.src.cfg.HTTPClient, s3.PutURL, a); err != nil {
		return &artifactError{name: a.Name, err: err}
	}
	return nil
}

// Resolve reports the resolution; a 409 means the queue resolved it already.
func (r *tcRun) Resolve(ctx context.Context, res Resolution) error {
	q := r.queue(ctx)
	var err error
	switch res.State {
	case StateCompleted:
		_, err = q.ReportCompleted(r.taskID, r.runIDString())
	case StateFailed:
		_, err = q.ReportFailed(r.taskID, r.runIDString())
	default:
		_, err = q.ReportException(r.taskID, r.runIDString(), &tcqueue.TaskExceptionRequest{Reason: res.Reason})
	}
	if err != nil {
		if httpStatus(err) == http.StatusConflict {
			return fmt.Errorf("report %s for %s/%d: %w", res, r.taskID, r.runID, ErrRunGone)
		}
		return fmt.Errorf("report %s for %s/%d: %w", res, r.taskID, r.runID, err)
	}
	return nil
}

// Cancelled asks the queue whether the run is still running.
func (r *tcRun) Cancelled(ctx context.Context) (bool, error) {
	// Status needs no credentials: the run's may have expired by now.
	q := newQueue(ctx, r.src.cfg.RootURL, nil, r.src.cfg.HTTPClient, r.src.cfg.RetryFor)
	st, err := q.Status(r.taskID)
	if err != nil {
		return false, fmt.Errorf("status of %s: %w", r.taskID, err)
	}
	for _, run := range st.Status.Runs {
		if int(run.RunID) == r.runID {
			return run.State != "running", nil
		}
	}
	return false, fmt.Errorf("status of %s has no run %d", r.taskID, r.runID)
}
