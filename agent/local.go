package agent

// A local run is `runner run-task`: a task definition (or bare payload)
// from a file, run once with no queue. Artifacts are copied to a
// directory, reports are only recorded, and nothing can cancel it but the
// user (Ctrl-C ends ctx, which stops the task like an agent shutdown).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// LocalRun is a run with no queue behind it.
type LocalRun struct {
	taskID       string
	task         *tcqueue.TaskDefinitionResponse
	artifactsDir string

	mu       sync.Mutex
	resolved *Resolution
}

// NewLocalRun reads a task definition or a bare payload (an object with a
// `command` key) from def. Artifacts are copied under artifactsDir; empty
// means they are not kept.
func NewLocalRun(def []byte, artifactsDir string) (*LocalRun, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(def, &probe); err != nil {
		return nil, fmt.Errorf("task file: not a JSON object (%v); give a task definition or a payload", err)
	}
	now := time.Now().UTC()
	task := &tcqueue.TaskDefinitionResponse{
		Created:  tcclient.Time(now),
		Deadline: tcclient.Time(now.Add(24 * time.Hour)),
		Expires:  tcclient.Time(now.Add(30 * 24 * time.Hour)),
	}
	if _, ok := probe["payload"]; ok {
		if err := json.Unmarshal(def, task); err != nil {
			return nil, fmt.Errorf("task file: not a task definition: %w", err)
		}
		if time.Time(task.Deadline).IsZero() {
			task.Deadline = tcclient.Time(now.Add(24 * time.Hour))
		}
		if time.Time(task.Expires).IsZero() {
			task.Expires = tcclient.Time(now.Add(30 * 24 * time.Hour))
		}
	} else if _, ok := probe["command"]; ok {
		task.Payload = json.RawMessage(def)
	} else {
		return nil, fmt.Errorf("task file: has neither `payload` (task definition) nor `command` (bare payload); give one of them")
	}
	return &LocalRun{taskID: slugid.Nice(), task: task, artifactsDir: artifactsDir}, nil
}

// NewLocalRunAs is NewLocalRun under a task id given by the caller (the
// runner's canary, whose id the provisioner chose and awaits a report of).
func NewLocalRunAs(taskID string, def []byte, artifactsDir string) (*LocalRun, error) {
	r, err := NewLocalRun(def, artifactsDir)
	if err != nil {
		return nil, err
	}
	r.taskID = taskID
	return r, nil
}

// localRun is a *LocalRun, or a type that embeds one (the runner's
// canary): a run with no queue behind it.
type localRun interface{ local() }

func (r *LocalRun) local() {}

// TaskID is a fresh slugid, or the one given to NewLocalRunAs.
func (r *LocalRun) TaskID() string { return r.taskID }

// RunID is always 0.
func (r *LocalRun) RunID() int { return 0 }

// Task is the definition read from the file.
func (r *LocalRun) Task() *tcqueue.TaskDefinitionResponse { return r.task }

// TakenUntil is zero: a local run has no claim to keep.
func (r *LocalRun) TakenUntil() time.Time { return time.Time{} }

// Credentials are empty.
func (r *LocalRun) Credentials() tcclient.Credentials { return tcclient.Credentials{} }

// Reclaim does nothing.
func (r *LocalRun) Reclaim(context.Context) (time.Time, error) { return time.Time{}, nil }

// Cancelled is always false.
func (r *LocalRun) Cancelled(context.Context) (bool, error) { return false, nil }

// Publish copies file artifacts under the artifacts directory; the others
// (error, reference, link) are already described in the log. An artifact's
// name comes from the payload: it must be a path inside the directory, and
// the copy is written through an os.Root of it, so no name nor link can
// place it elsewhere.
func (r *LocalRun) Publish(_ context.Context, a RunArtifact) error {
	if a.Kind != KindFile || r.artifactsDir == "" {
		return nil
	}
	dst := filepath.FromSlash(a.Name)
	if !filepath.IsLocal(dst) {
		return fmt.Errorf("copy artifact %s: the name is not a path inside the artifacts directory %s; not copied", a.Name, r.artifactsDir)
	}
	if err := os.MkdirAll(r.artifactsDir, 0o755); err != nil {
		return fmt.Errorf("copy artifact %s: %w", a.Name, err)
	}
	root, err := os.OpenRoot(r.artifactsDir)
	if err != nil {
		return fmt.Errorf("copy artifact %s: %w", a.Name, err)
	}
	defer root.Close()
	if err := copyArtifact(a, root, dst); err != nil {
		return fmt.Errorf("copy artifact %s: %w", a.Name, err)
	}
	return nil
}

// Resolve records the resolution.
func (r *LocalRun) Resolve(_ context.Context, res Resolution) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolved = &res
	return nil
}

// Resolution is what the run was resolved as, if it was.
func (r *LocalRun) Resolution() (Resolution, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resolved == nil {
		return Resolution{}, false
	}
	return *r.resolved, true
}

// copyArtifact copies a's content to dst in root.
func copyArtifact(a RunArtifact, root *os.Root, dst string) error {
	if err := root.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, size, err := a.open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, io.NewSectionReader(in, 0, size))
	return firstErr(cerr, out.Close())
}

// TaskExitCode is the exit code `runner run-task` ends with: 0 when the
// task completed, the failing command's own code when there is one, 1 for
// any other failure and 70 for an exception with no exit code.
func (r RunResult) TaskExitCode() int {
	switch {
	case r.Resolution.State == StateCompleted:
		return 0
	case r.ExitCode > 0:
		return r.ExitCode
	case r.Resolution.State == StateFailed:
		return 1
	}
	return 70
}
