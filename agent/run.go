package agent

// One run, from claim to resolution:
//
//	claimed ──journal──▶ task dir + log header ──payload invalid──▶ log names the field ─┐
//	   │                                                                                  │
//	   └─payload ok──▶ live.log reference ──▶ mounts ──▶ commands in sequence (process tree each) ──┤
//	        reclaimer and cancel watcher run alongside; any of                           │
//	        maxRunTime / cancel / reclaim 409 / agent shutdown stops the tree            │
//	   ──▶ payload artifacts (unless gone) ──▶ caches kept (mountrun.go) ──▶ footer ──▶ live_backing.log, live.log link ◀┘
//	   ──▶ report (unless gone) ──▶ journal entry removed, task dir removed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labrunner/labrunner/agent/mounts"
	"github.com/labrunner/labrunner/platform"
)

// taskDirPrefix begins the name of every task directory.
const taskDirPrefix = "task_"

// RunResult is how a run ended.
type RunResult struct {
	// Resolution is what was (or, when Reported is false, would have been)
	// reported.
	Resolution Resolution
	// Reported is false when nothing was reported: the run was cancelled
	// or lost its claim, or the report failed.
	Reported bool
	// ExitCode is the last command's exit code, -1 if none ran to the end.
	ExitCode int

	err error
}

// RunOne runs one claimed run to its resolution. ctx ending means the agent
// is shutting down: the task is stopped and resolved worker-shutdown. tee,
// if set, receives a copy of the log.
func (a *Agent) RunOne(ctx context.Context, run Run, tee io.Writer) (result RunResult) {
	started := time.Now()
	log := a.log.With("taskId", run.TaskID(), "runId", run.RunID())
	// Queue calls must outlive a shutdown: the run still has to be
	// resolved after ctx ends.
	callCtx, stopCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCalls()

	// The journal entry (an fsync, several ms) is written while the run is
	// prepared; it must be on disk before a command starts, and before the
	// entry can be forgotten.
	task := run.Task()
	expires := time.Time(task.Expires)
	taskDir := filepath.Join(a.cfg.TasksDir, fmt.Sprintf("%s%d", taskDirPrefix, time.Now().UnixNano()))
	entry := func(until time.Time) JournalEntry {
		return JournalEntry{TaskID: run.TaskID(), RunID: run.RunID(), Credentials: run.Credentials(), TakenUntil: until,
			TaskDir: taskDir, Log: taskDir + ".log", Expires: expires}
	}
	journalled := make(chan struct{})
	go func() {
		defer close(journalled)
		if a.journals(run) {
			if err := a.cfg.Journal.Record(entry(run.TakenUntil())); err != nil {
				log.Error("journal the run", "error", err)
			}
		}
	}()
	forget := func() {
		<-journalled
		if a.journals(run) {
			if err := a.cfg.Journal.Forget(run.TaskID(), run.RunID()); err != nil {
				log.Error("forget the run", "error", err)
			}
		}
	}
	defer func() {
		// An agent bug must not leave the run to expire: report it.
		if p := recover(); p != nil {
			a.log.Error("agent fault while running a task", "taskId", run.TaskID(), "runId", run.RunID(), "panic", p, "stack", string(debug.Stack()))
			err := fmt.Errorf("agent fault: %v", p)
			result = a.report(context.WithoutCancel(ctx), run, outcome{exitCode: -1, internal: err}, nil, a.log, forget)
		}
	}()
	o := outcome{exitCode: -1}
	var spec *Payload
	tl, err := a.prepare(taskDir, tee)
	if err != nil {
		// No log to upload: the failure is ours.
		log.Error("prepare task directory", "error", err)
		return a.report(callCtx, run, outcome{exitCode: -1, internal: err}, nil, log, forget)
	}
	if !a.cfg.KeepTaskDirs {
		defer os.RemoveAll(taskDir)
		defer os.Remove(tl.path)
	}
	if l, ok := run.(logWatcher); ok {
		l.LogOpened(tl.path)
	}
	tl.header(&a.cfg, run)

	spec, err = parseTaskPayload(task)
	var commandsStarted, commandsEnded time.Time
	var refused error
	if err == nil && a.cfg.Preflight != nil {
		refused = a.cfg.Preflight(callCtx)
	}
	switch {
	case err != nil:
		tl.Printf("Invalid payload, %v", err)
		o.malformed = err
	case refused != nil:
		tl.Printf("Machine refused the task: %v", refused)
		o.resource = refused
	default:
		if spec.LiveLog {
			stopLive := a.startLiveLog(callCtx, run, tl, started.Add(spec.MaxRunTime+15*time.Minute), expires)
			defer stopLive()
		}

		<-journalled
		var proxy *taskProxy
		var featureErr error
		if spec.ChainOfTrust && a.cfg.ChainOfTrustKey == nil {
			featureErr = errNoChainOfTrustKey
		}
		if spec.TaskclusterProxy && featureErr == nil {
			proxy, featureErr = a.startTaskProxy(run, tl, log)
			defer proxy.stop()
		}
		// Reclaims go on until the run is reported: uploads can be long.
		runCtx, stopRun := context.WithCancel(callCtx)
		defer stopRun()
		gone := make(chan struct{})
		rc := &reclaimer{run: run, margin: a.cfg.ReclaimMargin, retryEvery: 2 * time.Second, log: log,
			onReclaim: func(until time.Time) {
				if a.cfg.Journal != nil {
					if err := a.cfg.Journal.Record(entry(until)); err != nil {
						log.Error("journal the reclaimed run", "error", err)
					}
				}
				proxy.renew(run.Credentials())
			}}
		go rc.loop(runCtx, gone)
		cancelled := a.cfg.Cancel.Watch(runCtx, run)

		var mounted *mounts.Mounted
		var failed *outcome
		if featureErr == nil {
			mounted, failed = a.mount(runCtx, ctx, run, spec, taskDir, tl, gone, cancelled)
		}
		commandsStarted = time.Now()
		switch {
		case failed != nil:
			o = *failed
		case ctx.Err() != nil:
			// Claimed as the agent began stopping: give it straight back.
			tl.Printf("Worker shutting down before the commands started")
			o = outcome{exitCode: -1, shutdown: true}
		case errors.Is(featureErr, errNoRunCredentials), errors.Is(featureErr, errNoChainOfTrustKey):
			tl.Printf("Invalid payload: %v", featureErr)
			o.malformed = featureErr
		case featureErr != nil:
			tl.Printf("Could not start the taskcluster-proxy: %v", featureErr)
			o.internal = featureErr
		default:
			o = a.execute(ctx, run, spec, taskDir, tl, gone, cancelled, proxy.url())
		}
		commandsEnded = time.Now()

		if !o.gone && o.internal == nil && o.malformed == nil && failed == nil {
			a.publishTaskArtifacts(callCtx, run, spec, taskDir, expires, tl, &o)
		}
		a.unmount(mounted, spec, tl, &o)
	}

	var retry []int
	if spec != nil {
		retry = spec.OnExitStatus.Retry
	}
	res, report := decide(o, retry)
	resText := res.String()
	if !report {
		resText = "not reported"
	}
	tl.footer(resText, o.describe(), started, commandsStarted, commandsEnded)
	if err := tl.Close(); err != nil {
		log.Error("close task log", "error", err)
	}
	if err := publishBackingLog(callCtx, run, tl.path, expires); err != nil {
		if report {
			log.Error("upload the task log", "error", err)
			// A run without its log is not the task's fault.
			if !errors.Is(err, ErrRunGone) && res.State != StateException {
				o.resource = err
			}
		}
	}
	if e, ok := run.(endedRun); ok {
		e.ended(callCtx, taskDir, o)
	}
	return a.report(callCtx, run, o, retry, log, forget)
}

// journals says whether run's claim is journalled: a Buildbot build's
// claim lives in the bridge, which re-queues it if the agent vanishes, and
// a local run (`runner run-task`, a black-hole canary, whose type embeds
// *LocalRun) has no queue to resolve it on at the next start.
func (a *Agent) journals(run Run) bool {
	_, self := run.(selfWatching)
	_, local := run.(localRun)
	return a.cfg.Journal != nil && !self && !local
}

// prepare makes the task directory and opens the log beside it.
func (a *Agent) prepare(taskDir string, tee io.Writer) (*taskLog, error) {
	if err := platform.PrepareTaskDir(taskDir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(taskTempDir(taskDir), 0o700); err != nil {
		return nil, fmt.Errorf("create the task's temporary directory: %w", err)
	}
	return openTaskLog(taskDir+".log", tee)
}

// report resolves the run and forgets its journal entry.
func (a *Agent) report(ctx context.Context, run Run, o outcome, retry []int, log *slog.Logger, forget func()) RunResult {
	res, report := decide(o, retry)
	result := RunResult{Resolution: res, ExitCode: o.exitCode}
	if report {
		err := run.Resolve(ctx, res)
		result.err = err
		switch {
		case err == nil:
			result.Reported = true
			log.Info("run resolved", "resolution", res.String())
		case errors.Is(err, ErrRunGone):
			log.Info("run already resolved by the queue", "resolution", res.String())
		default:
			log.Error("report the run", "resolution", res.String(), "error", err)
		}
	} else {
		log.Info("run cancelled or lost; nothing reported")
	}
	// Forget only what is settled: a run whose report failed stays in the
	// journal for the next start to resolve.
	if !report || result.Reported || errors.Is(result.err, ErrRunGone) {
		forget()
	}
	return result
}

// startLiveLog serves the log live and publishes the live.log reference;
// the returned func stops serving it.
func (a *Agent) startLiveLog(ctx context.Context, run Run, tl *taskLog, refExpires, taskExpires time.Time) func() {
	if a.cfg.LiveLogServer == nil {
		return func() {}
	}
	path, err := a.cfg.LiveLogServer.Add(tl.live)
	if err != nil {
		tl.Printf("Live log unavailable: %v", err)
		return func() {}
	}
	if refExpires.After(taskExpires) && !taskExpires.IsZero() {
		refExpires = taskExpires
	}
	publishLiveLog(ctx, run, tl, strings.TrimRight(a.cfg.LiveLogURL, "/")+path, refExpires)
	return func() { a.cfg.LiveLogServer.Remove(path) }
}

// execute runs the commands in sequence until one fails or the run must
// stop.
func (a *Agent) execute(shutdown context.Context, run Run, spec *Payload, taskDir string, tl *taskLog, gone, cancelled <-chan struct{}, proxyURL string) (o outcome) {
	o = outcome{exitCode: -1}
	limit := time.NewTimer(spec.MaxRunTime)
	defer limit.Stop()
	env := TaskEnv(os.Environ(), spec.Env, TaskEnvRun{TaskID: run.TaskID(), RunID: run.RunID(), RootURL: a.cfg.RootURL, TaskDir: taskDir, TempDir: taskTempDir(taskDir), ProxyURL: proxyURL})
	user, err := a.startTaskUser(taskDir, spec, tl)
	var payloadErr *taskUserPayloadError
	switch {
	case errors.As(err, &payloadErr):
		o.malformed = err
		return o
	case err != nil:
		o.internal = err
		return o
	}
	defer func() { o.userKept = !a.endTaskUser(user, tl) }()
	n := spec.CommandCount()
	for i := range n {
		command := commandAt(spec, i)
		cmd, err := buildCommand(run.TaskID(), i, i == n-1, command, taskDir, env)
		if err != nil {
			o.internal = err
			return o
		}
		if user != nil {
			if err := user.RunAs(cmd); err != nil {
				tl.Printf("Could not start command %d as %s: %v", i, user.Name, err)
				o.internal = err
				return o
			}
		}
		cmd.Stdout = tl
		cmd.Stderr = tl
		tl.Printf("Executing command %d: %s", i, quoteCommand(command))
		tree, err := platform.StartProcessTree(cmd)
		if err != nil {
			// As in generic-worker, a command that cannot start fails the task.
			tl.Printf("Could not start command %d: %v", i, err)
			o.exitCode = -1
			return o
		}
		stop := ""
		select {
		case <-tree.Done():
		case <-limit.C:
			stop = "max run time exceeded"
			o.timedOut = true
		case <-gone:
			stop = "claim lost (cancelled or resolved by the queue)"
			o.gone = true
		case <-cancelled:
			stop = "task cancelled"
			o.gone = true
		case <-shutdown.Done():
			stop = "worker shutting down"
			o.shutdown = true
		}
		if stop != "" {
			grace := a.killGrace(run)
			tl.Printf("Stopping command %d: %s (interrupt, kill after %s)", i, stop, grace)
			if err := tree.Stop(grace); err != nil {
				tl.Printf("Stopping command %d: %v", i, err)
			}
		}
		code, werr := tree.Wait()
		if err := tree.Close(); err != nil {
			tl.Printf("Cleaning up command %d: %v", i, err)
		}
		o.exitCode = code
		if stop != "" {
			if o.timedOut {
				tl.Printf("Task aborted: max run time %s exceeded", spec.MaxRunTime)
			}
			return o
		}
		if werr != nil {
			tl.Printf("Command %d ended abnormally: %v", i, werr)
			return o
		}
		tl.Printf("Command %d exited with code %d", i, code)
		if code != 0 {
			return o
		}
	}
	return o
}

// graced is a run with its own time between interrupting and killing its
// processes (a Buildbot build's is short, as a Buildbot slave's is).
type graced interface {
	KillGrace() time.Duration
}

// killGrace is run's own kill grace, else the agent's.
func (a *Agent) killGrace(run Run) time.Duration {
	if g, ok := run.(graced); ok {
		return g.KillGrace()
	}
	return a.cfg.KillGrace
}

func quoteCommand(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			parts[i] = strconv.Quote(a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// publishTaskArtifacts uploads the payload's artifacts, then the chain of
// trust of those uploaded if the payload asks for one. The task directory
// stays open as an os.Root until both are done: every read of a task's
// file goes through it (artifactopen.go).
func (a *Agent) publishTaskArtifacts(ctx context.Context, run Run, spec *Payload, taskDir string, expires time.Time, tl *taskLog, o *outcome) {
	root, err := os.OpenRoot(taskDir)
	if err != nil {
		o.internal = fmt.Errorf("open the task directory to read its artifacts: %w", err)
		tl.Printf("Artifacts: %v", o.internal)
		return
	}
	defer root.Close()
	published := a.uploadArtifacts(ctx, run, spec, root, taskDir, expires, tl, o)
	if spec.ChainOfTrust && o.internal == nil && o.resource == nil && o.malformed == nil {
		a.publishChainOfTrust(ctx, run, tl, published, expires, o)
	}
}

// uploadArtifacts publishes the payload's artifacts; a missing one fails
// the task, and queue refusals map as generic-worker maps them.
func (a *Agent) uploadArtifacts(ctx context.Context, run Run, spec *Payload, root *os.Root, taskDir string, expires time.Time, tl *taskLog, o *outcome) (published []RunArtifact) {
	reserved := reservedArtifacts(spec)
	for _, art := range resolveArtifacts(root, taskDir, spec.Artifacts, expires) {
		if feature := reserved[art.Name]; feature != "" {
			// As generic-worker: skipped, not failed, since a directory
			// artifact may hold one innocently.
			tl.Printf("Not uploading artifact %s found in task.payload.artifacts section, since this will be uploaded later by %s", art.Name, feature)
			continue
		}
		if art.Kind == KindError {
			tl.Printf("Artifact %s: %s (%s)", art.Name, art.Message, art.Reason)
			o.missingOutput = true
		} else {
			tl.Printf("Uploading artifact %s (%s, %s)", art.Name, art.ContentType, art.ContentEncoding)
		}
		err := run.Publish(ctx, art)
		if err == nil {
			published = append(published, art)
			continue
		}
		tl.Printf("Artifact %s failed: %v", art.Name, err)
		recordArtifactFailure(art.Name, err, o)
		return published
	}
	return published
}

// recordArtifactFailure maps a queue refusal as generic-worker maps it.
func recordArtifactFailure(name string, err error, o *outcome) {
	switch st := artifactStatus(err); {
	case st == http.StatusConflict:
		o.malformed = fmt.Errorf("artifact %s was already uploaded with different content; check payload.artifacts: %w", name, err)
	case st >= 500 || st == 0:
		o.resource = err
	default:
		o.internal = err
	}
}
