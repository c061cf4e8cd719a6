package agent

// What a restarted agent does with the files of a run its predecessor left
// behind (see journal.go): the log written so far gets a closing line and
// is published as the run's log artifacts, exactly as a finished run's log
// is (publishBackingLog), before the run is resolved; once the run is
// settled the log file and the task directory are removed. Files of runs
// that were never journalled (Buildbot builds, which their bridge
// re-queues) are removed too.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// uploadLeftLog closes and uploads the saved log of a journalled run. It
// never fails the recovery: a log that cannot be uploaded within
// opts.UploadFor is given up with a warning, so that the run is still
// resolved.
func (j *Journal) uploadLeftLog(ctx context.Context, run Run, e *JournalEntry, log *slog.Logger, opts RecoverOptions) {
	log = log.With("taskId", e.TaskID, "runId", e.RunID)
	if e.Log == "" {
		return
	}
	if _, err := os.Stat(e.Log); err != nil {
		log.Info("no saved log for the run left by a previous agent", "log", e.Log, "error", err)
		return
	}
	if e.Expires.IsZero() {
		log.Warn("the journal does not hold the task's expiry; the saved log is not uploaded", "log", e.Log)
		return
	}
	if !e.LogClosed {
		if err := appendRestartLines(e.Log, opts.Now()); err != nil {
			log.Warn("close the saved log of a run left by a previous agent", "error", err)
		}
		e.LogClosed = true
		if err := j.Record(*e); err != nil {
			log.Warn("journal the closed log", "error", err)
		}
	}
	uctx, cancel := context.WithTimeout(ctx, opts.UploadFor)
	defer cancel()
	started := time.Now()
	if err := publishBackingLog(uctx, run, e.Log, e.Expires); err != nil {
		log.Warn("could not upload the log of a run left by a previous agent; resolving the run without it",
			"bound", opts.UploadFor, "error", err)
		return
	}
	log.Info("uploaded the log of a run left by a previous agent", "took", time.Since(started).Round(time.Millisecond))
}

// appendRestartLines ends a saved log with the reason it ended.
func appendRestartLines(path string, now time.Time) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open saved log %s: %w", path, err)
	}
	// A log cut mid-line still gets its closing lines on lines of their own.
	lines := "\n" + string(logLine(now, fmt.Sprintf("Worker restarted at %s: the agent running this task stopped before the task ended (killed, crashed or the machine lost power); its processes are stopped", now.UTC().Format(time.RFC3339)))) +
		string(logLine(now, "Result: exception/worker-shutdown (worker restarted)"))
	_, werr := f.WriteString(lines)
	serr := f.Sync()
	cerr := f.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		return fmt.Errorf("append to saved log %s: %w", path, err)
	}
	return nil
}

// removeLeftFiles removes a recovered run's log file and task directory.
// The paths come from the journal, so they are checked to be a task
// directory and its log before anything is removed.
func removeLeftFiles(e JournalEntry) error {
	var errs []error
	if e.TaskDir != "" {
		if !strings.HasPrefix(filepath.Base(e.TaskDir), taskDirPrefix) || !filepath.IsAbs(e.TaskDir) {
			return fmt.Errorf("journal entry %s/%d names %q as its task directory; not removing it", e.TaskID, e.RunID, e.TaskDir)
		}
		if err := removeTree(e.TaskDir); err != nil {
			errs = append(errs, fmt.Errorf("remove task directory: %w", err))
		}
	}
	if e.Log != "" {
		if e.Log != e.TaskDir+".log" {
			return errors.Join(append(errs, fmt.Errorf("journal entry %s/%d names %q as its log; not removing it", e.TaskID, e.RunID, e.Log))...)
		}
		if err := os.Remove(e.Log); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove saved log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeLeftTaskFiles removes the task directories and logs in the tasks
// directory that no journal entry still needs. It runs before the first
// claim, when no run of this agent exists, so every such file was left by
// an agent that did not finish.
func (a *Agent) removeLeftTaskFiles() {
	keep := map[string]bool{}
	if a.cfg.Journal != nil {
		entries, _ := a.cfg.Journal.Entries()
		for _, e := range entries {
			keep[e.TaskDir], keep[e.Log] = true, true
		}
	}
	files, err := os.ReadDir(a.cfg.TasksDir)
	if err != nil {
		a.log.Warn("list files left by earlier runs", "error", err)
		return
	}
	for _, f := range files {
		name := f.Name()
		if !strings.HasPrefix(name, taskDirPrefix) || (!f.IsDir() && !strings.HasSuffix(name, ".log")) {
			continue
		}
		p := filepath.Join(a.cfg.TasksDir, name)
		if keep[p] {
			continue
		}
		if err := removeTree(p); err != nil {
			a.log.Warn("remove files left by an earlier run", "path", p, "error", err)
			continue
		}
		a.log.Info("removed files left by an earlier run", "path", p)
	}
}

// removeTree is os.RemoveAll, with a plain walk as a fallback: Wine's
// Windows emulation refuses the directory removal os.RemoveAll uses
// ("Invalid function").
func removeTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	var paths []string
	_ = filepath.WalkDir(path, func(p string, _ fs.DirEntry, _ error) error {
		paths = append(paths, p)
		return nil
	})
	slices.Reverse(paths)
	for _, p := range paths {
		_ = os.Remove(p)
	}
	if _, serr := os.Lstat(path); errors.Is(serr, os.ErrNotExist) {
		return nil
	}
	return err
}
