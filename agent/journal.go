package agent

// The journal makes a crash cost one retry instead of a claim expiry:
//
//	claimed ──Record (before the first command)──▶ journalled
//	journalled ──Record again (each reclaim: new credentials)──▶ journalled
//	journalled ──Forget (after resolution, or when the run is gone)──▶ gone
//	journalled ──agent crashes; next start: Recover──▶ saved log closed and uploaded
//	           ──▶ exception/worker-shutdown ──▶ Forget, log file and task directory removed
//
// One file per run, written atomically (temp file, fsync, rename), so that a
// crash mid-write leaves the previous entry or none, never half of one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/platform"
)

// JournalEntry is one claimed run as recorded on disk.
type JournalEntry struct {
	TaskID      string               `json:"taskId"`
	RunID       int                  `json:"runId"`
	Credentials tcclient.Credentials `json:"credentials"`
	TakenUntil  time.Time            `json:"takenUntil"`
	// TaskDir and Log are the run's task directory and log file, so that
	// a restarted agent can upload what the run logged and clean up.
	TaskDir string `json:"taskDir,omitempty"`
	Log     string `json:"log,omitempty"`
	// Expires is the task's expiry, which the log artifact may not outlive.
	Expires time.Time `json:"expires,omitzero"`
	// LogClosed says the restart line is already in the log (a recovery
	// that could not resolve the run is tried again at the next start).
	LogClosed bool `json:"logClosed,omitempty"`
}

// Journal records claimed runs in a directory.
type Journal struct {
	dir string
}

// OpenJournal opens (creating if needed) the journal in dir.
func OpenJournal(dir string) (*Journal, error) {
	// Entries hold the runs' credentials: the directory is the runner's
	// alone (an older one is repaired silently; the runner logs repairs).
	if _, err := platform.MakePrivateDir(dir); err != nil {
		return nil, fmt.Errorf("journal directory: %w", err)
	}
	return &Journal{dir: dir}, nil
}

func (j *Journal) path(taskID string, runID int) string {
	return filepath.Join(j.dir, fmt.Sprintf("%s-%d.json", taskID, runID))
}

// Record writes or replaces the entry for a run.
func (j *Journal) Record(e JournalEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode journal entry: %w", err)
	}
	return writeFileAtomic(j.path(e.TaskID, e.RunID), b)
}

// Forget removes the entry for a run; a missing entry is not an error.
func (j *Journal) Forget(taskID string, runID int) error {
	err := os.Remove(j.path(taskID, runID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal entry %s/%d: %w", taskID, runID, err)
	}
	return nil
}

// Entries lists the recorded runs; unreadable entries are returned as
// errors alongside the good ones.
func (j *Journal) Entries() ([]JournalEntry, error) {
	files, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("read journal directory %s: %w", j.dir, err)
	}
	var out []JournalEntry
	var errs []error
	for _, f := range files {
		if f.IsDir() || !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(j.dir, f.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("read journal entry %s: %w", f.Name(), err))
			continue
		}
		var e JournalEntry
		if err := json.Unmarshal(b, &e); err != nil || e.TaskID == "" {
			errs = append(errs, fmt.Errorf("journal entry %s is corrupt (%v); removing it", f.Name(), err))
			_ = os.Remove(filepath.Join(j.dir, f.Name()))
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// RecoverOptions tune Recover.
type RecoverOptions struct {
	// UploadFor bounds the upload of one run's saved log, retries
	// included (default 2 minutes); past it the run is resolved without
	// its log.
	UploadFor time.Duration
	// KeepFiles keeps the saved log and task directory after recovery.
	KeepFiles bool
	// Now replaces the clock for the restart line (tests).
	Now func() time.Time
}

// Recover resolves every journalled run that the queue still has running
// as exception/worker-shutdown, so that the queue retries it now rather
// than when its claim expires, and forgets it. Before resolving, the log
// the run wrote so far gets a closing line and is uploaded as the run's
// log artifacts; once the run is settled its log file and task directory
// are removed. resume turns an entry back into a Run of the source that
// claimed it.
func (j *Journal) Recover(ctx context.Context, resume func(JournalEntry) Run, log *slog.Logger, opts RecoverOptions) error {
	if opts.UploadFor <= 0 {
		opts.UploadFor = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	entries, err := j.Entries()
	if err != nil {
		log.Warn("journal", "error", err)
	}
	var errs []error
	for _, e := range entries {
		run := resume(e)
		if run == nil {
			errs = append(errs, fmt.Errorf("resolve journalled run %s/%d: no source can resume it", e.TaskID, e.RunID))
			continue
		}
		j.uploadLeftLog(ctx, run, &e, log, opts)
		rerr := run.Resolve(ctx, Exception(ReasonWorkerShutdown))
		switch {
		case rerr == nil:
			log.Info("resolved run left by a previous agent", "taskId", e.TaskID, "runId", e.RunID, "resolution", "exception/worker-shutdown")
		case errors.Is(rerr, ErrRunGone):
			log.Info("run left by a previous agent is already resolved", "taskId", e.TaskID, "runId", e.RunID)
		case time.Now().After(e.TakenUntil):
			// Its credentials have expired with its claim; the queue
			// resolves it as claim-expired on its own.
			log.Warn("could not resolve run left by a previous agent; its claim has expired", "taskId", e.TaskID, "runId", e.RunID, "error", rerr)
		default:
			errs = append(errs, fmt.Errorf("resolve journalled run %s/%d: %w", e.TaskID, e.RunID, rerr))
			continue
		}
		// The files go first: a crash in between leaves an entry whose
		// log is gone, which the next start settles without uploading.
		if !opts.KeepFiles {
			if rerr := removeLeftFiles(e); rerr != nil {
				log.Warn("remove the files of a run left by a previous agent", "taskId", e.TaskID, "runId", e.RunID, "error", rerr)
			}
		}
		if ferr := j.Forget(e.TaskID, e.RunID); ferr != nil {
			errs = append(errs, ferr)
		}
	}
	return errors.Join(errs...)
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync
// of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	// The directory's fsync makes the rename itself durable; not every OS
	// allows opening a directory for it, so failure there is not fatal.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
