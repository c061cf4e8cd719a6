package agent

// A Buildbot build as an agent Run: its heartbeat to the bridge, its
// cancellation, its artifacts, and its result reported as the build's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	bbclient "github.com/labrunner/labrunner/bridge/client"
)

// bbRun is one claimed Buildbot build.
type bbRun struct {
	src     *BBSource
	build   *bbclient.Build
	taskID  string
	task    *tcqueue.TaskDefinitionResponse
	results BuilderResults

	cancelled chan struct{} // closed when the bridge says stop
	done      chan struct{} // closed when the build is reported
	doneOnce  sync.Once

	mu      sync.Mutex
	taskDir string
	out     outcome
	logURL  string
	logErr  error
}

// TaskID is the bridged task's id (or buildbot-<build id> for a request
// that came from Buildbot itself).
func (r *bbRun) TaskID() string { return r.taskID }

// RunID is 0: the bridge, not the agent, knows the Taskcluster run.
func (r *bbRun) RunID() int { return 0 }

// Task is a task made from the builder's steps.
func (r *bbRun) Task() *tcqueue.TaskDefinitionResponse { return r.task }

// TakenUntil is zero: heartbeats, not reclaims, keep a build's claim.
func (r *bbRun) TakenUntil() time.Time { return time.Time{} }

// Credentials are empty: a build has no Taskcluster credentials.
func (r *bbRun) Credentials() tcclient.Credentials { return tcclient.Credentials{} }

// KillGrace is the source's: a build's processes are killed soon after
// the interrupt.
func (r *bbRun) KillGrace() time.Duration { return r.src.cfg.KillGrace }

// Reclaim is a no-op; the heartbeat loop keeps the claim.
func (r *bbRun) Reclaim(context.Context) (time.Time, error) { return time.Time{}, nil }

// Cancelled reports whether the bridge has said to stop the build.
func (r *bbRun) Cancelled(context.Context) (bool, error) {
	select {
	case <-r.cancelled:
		return true, nil
	default:
		return false, nil
	}
}

// watchCancel is the run's own cancel watcher (see sourceCancelWatcher).
func (r *bbRun) watchCancel() <-chan struct{} { return r.cancelled }

// heartbeat keeps the claim fresh until the build is reported, and closes
// cancelled when the bridge says the build was cancelled.
func (r *bbRun) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every*10)
		hb, err := r.src.cfg.Client.Heartbeat(ctx, bbclient.HeartbeatRequest{WorkerID: r.src.cfg.WorkerID, Incarnation: r.build.Incarnation, BuildID: r.build.BuildID})
		cancel()
		if err != nil {
			r.src.log.Warn("heartbeat of a Buildbot build", "builder", r.build.BuilderName, "build", r.build.BuildNumber, "error", err)
			continue
		}
		if hb.Cancelled {
			r.src.log.Info("Buildbot build cancelled", "builder", r.build.BuilderName, "build", r.build.BuildNumber, "reason", hb.Reason)
			close(r.cancelled)
			return
		}
	}
}

// Publish uploads the task log to the log store; the bridge turns the
// other artifacts (properties, result) into the task's, so nothing else is
// published.
func (r *bbRun) Publish(ctx context.Context, a RunArtifact) error {
	if a.Name != BackingLogName || a.Kind != KindFile || r.src.cfg.LogUploadURL == "" {
		return nil
	}
	u := strings.TrimRight(r.src.cfg.LogUploadURL, "/") + "/" + url.PathEscape(r.build.BuilderName) + "/" + strconv.FormatInt(r.build.BuildID, 10) + ".log.gz"
	a.ContentType = "application/gzip"
	err := putFile(ctx, r.src.cfg.HTTPClient, u, a)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.logErr = err
		return fmt.Errorf("upload the log of %s build %d: %w", r.build.BuilderName, r.build.BuildNumber, err)
	}
	r.logURL = u
	return nil
}

// ended is told the task directory and the outcome before the run is
// reported; a build the bridge cancelled is finished CANCELLED here, as
// the agent reports nothing for a cancelled run.
func (r *bbRun) ended(ctx context.Context, taskDir string, o outcome) {
	r.mu.Lock()
	r.taskDir, r.out = taskDir, o
	r.mu.Unlock()
	if cancelled, _ := r.Cancelled(ctx); cancelled && o.gone {
		if err := r.finish(ctx, bbclient.Cancelled); err != nil && !errors.Is(err, ErrRunGone) {
			r.src.log.Error("finish a cancelled Buildbot build", "builder", r.build.BuilderName, "build", r.build.BuildNumber, "error", err)
		}
	}
}

// Resolve finishes the build with the result the resolution maps to.
func (r *bbRun) Resolve(ctx context.Context, res Resolution) error {
	return r.finish(ctx, r.result(res))
}

// result maps a resolution (and the exit code behind it) to a Buildbot
// result.
func (r *bbRun) result(res Resolution) int {
	r.mu.Lock()
	code := r.out.exitCode
	r.mu.Unlock()
	switch res.State {
	case StateCompleted:
		return bbclient.Success
	case StateFailed:
		for _, w := range r.results.Warnings {
			if w == code {
				return bbclient.Warnings
			}
		}
		return bbclient.Failure
	}
	switch res.Reason {
	case ReasonIntermittentTask, ReasonWorkerShutdown:
		return bbclient.Retry
	}
	return bbclient.Exception
}

// properties are the request's properties with the properties file's
// over them.
func (r *bbRun) properties() (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(r.build.Properties))
	for k, v := range r.build.Properties {
		out[k] = v
	}
	r.mu.Lock()
	dir := r.taskDir
	r.mu.Unlock()
	if dir == "" {
		return out, nil
	}
	raw, err := readPropertiesFile(dir)
	var tfe *taskFileError
	if errors.As(err, &tfe) && tfe.Reason == ReasonFileMissing {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read %s: %w", PropertiesFileName, err)
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(raw, &set); err != nil {
		return out, fmt.Errorf("%s is not a JSON object of property name to value: %w", PropertiesFileName, err)
	}
	for k, v := range set {
		out[k] = v
	}
	return out, nil
}

// maxPropertiesFile bounds the properties file as the bridge bounds the
// finish request that carries them (bridge/masterapi.go).
const maxPropertiesFile = 4 << 20

// readPropertiesFile reads the task's properties file as artifacts are
// read (artifactopen.go): the task wrote it, the runner reads it as root,
// so a link out of the task directory, a pipe or another account's file
// is refused, and so is one too large to send.
func readPropertiesFile(taskDir string) ([]byte, error) {
	root, err := os.OpenRoot(taskDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, info, err := openTaskFile(root, PropertiesFileName)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() > maxPropertiesFile {
		return nil, fmt.Errorf("is %d bytes, more than the %d a build's properties may take", info.Size(), maxPropertiesFile)
	}
	return io.ReadAll(io.NewSectionReader(f, 0, info.Size()))
}

func (r *bbRun) finish(ctx context.Context, result int) error {
	defer r.doneOnce.Do(func() { close(r.done) })
	props, perr := r.properties()
	if perr != nil {
		r.src.log.Warn("build properties ignored", "builder", r.build.BuilderName, "build", r.build.BuildNumber, "error", perr)
		if result == bbclient.Success || result == bbclient.Warnings {
			result = bbclient.Exception
		}
	}
	r.mu.Lock()
	logURL := r.logURL
	r.mu.Unlock()
	_, err := r.src.cfg.Client.Finish(ctx, bbclient.FinishRequest{WorkerID: r.src.cfg.WorkerID, Incarnation: r.build.Incarnation,
		BuildID: r.build.BuildID, Result: result, Properties: props, LogURL: logURL})
	if err != nil {
		if errors.Is(err, bbclient.ErrConflict) {
			return fmt.Errorf("finish %s build %d: %w", r.build.BuilderName, r.build.BuildNumber, ErrRunGone)
		}
		return fmt.Errorf("finish %s build %d: %w", r.build.BuilderName, r.build.BuildNumber, err)
	}
	return nil
}
