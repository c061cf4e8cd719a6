package agent

// A run's log, as generic-worker keeps it:
//
//	open ──▶ header ──▶ reference artifact public/logs/live.log → live URL
//	     ──▶ command output and agent lines ──▶ footer (result, durations)
//	     ──▶ s3 artifact public/logs/live_backing.log ──▶ live.log becomes a link to it
//
// The backing file is the record; the live server streams it while it grows.

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Log artifact names, as generic-worker uses them.
const (
	LiveLogName    = "public/logs/live.log"
	BackingLogName = "public/logs/live_backing.log"
	logContentType = "text/plain; charset=utf-8"
)

// logWatcher is a run told where its log is written, before the first
// line: the runner keeps its canary's log path in its state file, so that
// after a crash it can still read what the canary wrote (runner/canary.go).
type logWatcher interface {
	LogOpened(path string)
}

// taskLog is the log of one run: a LiveLog (the backing file, streamed
// while it grows) plus an optional copy (the terminal for `runner
// run-task`).
type taskLog struct {
	path string

	mu   sync.Mutex
	live *LiveLog
	tee  io.Writer
}

func openTaskLog(path string, tee io.Writer) (*taskLog, error) {
	l, err := CreateLiveLog(path)
	if err != nil {
		return nil, fmt.Errorf("create task log: %w", err)
	}
	return &taskLog{path: path, live: l, tee: tee}, nil
}

// Write appends command output; after Close it is discarded, since a
// background process of a stopped task may still hold the pipe.
func (l *taskLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live == nil {
		return len(p), nil
	}
	if l.tee != nil {
		_, _ = l.tee.Write(p)
	}
	return l.live.Write(p)
}

// Printf writes one agent line, prefixed like generic-worker's.
func (l *taskLog) Printf(format string, args ...any) {
	_, _ = l.Write(logLine(time.Now(), fmt.Sprintf(format, args...)))
}

// logLine is one agent line of a task log.
func logLine(t time.Time, msg string) []byte {
	return fmt.Appendf(nil, "[labrunner %s] %s\n", t.UTC().Format(time.RFC3339Nano), msg)
}

// Close ends the log: the file is complete and live readers finish.
func (l *taskLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live == nil {
		return nil
	}
	err := l.live.Close()
	l.live = nil
	return err
}

// header is the first lines of every run log.
func (l *taskLog) header(cfg *Config, run Run) {
	task := run.Task()
	pool := task.TaskQueueID
	if pool == "" && task.ProvisionerID != "" {
		pool = task.ProvisionerID + "/" + task.WorkerType
	}
	if cfg.WorkerGroup == "" && cfg.WorkerID == "" {
		// runner run-task: no queue, no worker identity, no pool.
		l.Printf("Worker: this machine, a local run with no queue")
	} else {
		l.Printf("Worker: %s/%s", cfg.WorkerGroup, cfg.WorkerID)
	}
	if pool != "" {
		l.Printf("Pool: %s", pool)
	}
	l.Printf("Task: %s", run.TaskID())
	l.Printf("Run: %d", run.RunID())
	l.Printf("Agent: labrunner %s", cfg.Version)
}

// footer is the last lines of every run log.
func (l *taskLog) footer(res string, why string, started, commandsStarted, commandsEnded time.Time) {
	l.Printf("Result: %s (%s)", res, why)
	if !commandsStarted.IsZero() {
		l.Printf("Commands ran for %s", commandsEnded.Sub(commandsStarted).Round(time.Millisecond))
	}
	l.Printf("Run took %s in total", time.Since(started).Round(time.Millisecond))
}

// publishLiveLog creates the live.log reference; a live log is best effort
// (as in generic-worker), so failures are only written to the log.
func publishLiveLog(ctx context.Context, run Run, l *taskLog, url string, expires time.Time) {
	err := run.Publish(ctx, RunArtifact{Kind: KindReference, Name: LiveLogName, URL: url, ContentType: logContentType, Expires: expires})
	if err != nil {
		l.Printf("Could not create the live log artifact: %v", err)
	}
}

// publishBackingLog uploads the finished log and points live.log at it.
func publishBackingLog(ctx context.Context, run Run, path string, expires time.Time) error {
	err := run.Publish(ctx, RunArtifact{Kind: KindFile, Name: BackingLogName, Path: path, ContentType: logContentType, ContentEncoding: "gzip", Expires: expires})
	if err != nil {
		return fmt.Errorf("upload task log: %w", err)
	}
	err = run.Publish(ctx, RunArtifact{Kind: KindLink, Name: LiveLogName, Target: BackingLogName, ContentType: logContentType, Expires: expires})
	if err != nil {
		return fmt.Errorf("link live log to task log: %w", err)
	}
	return nil
}
