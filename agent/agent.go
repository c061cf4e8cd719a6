package agent

// The agent's main loop:
//
//	start ──Recover journal──▶ idle ──Claim(free slots)──▶ runs started, one goroutine each
//	  idle ◀── nothing claimed: wait IdlePollWait ──┘   │
//	  idle ◀── claim failed: wait ErrorPollWait ────────┘
//	  all slots busy ──▶ wait for a run to end
//	  ctx done ──▶ running tasks stopped and resolved exception/worker-shutdown ──▶ Run returns

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/agent/mounts"
	"github.com/labrunner/labrunner/platform"
)

// Config configures an Agent.
type Config struct {
	// Source is where runs are claimed (required by Run, not by RunOne).
	Source Source
	// Cancel tells running runs of cancellations (default: none, so only a
	// reclaim's 409 stops a cancelled run).
	Cancel CancelWatcher
	// Journal records claimed runs for crash recovery (optional).
	Journal *Journal
	// LiveLogServer serves logs while tasks run (optional); LiveLogURL is
	// the base URL others reach it at.
	LiveLogServer *LiveLogServer
	LiveLogURL    string

	// Preflight, if set, is asked before each task's commands run (disk
	// space, machine health); an error refuses the task, which is resolved
	// exception/resource-unavailable with the error in its log.
	Preflight func(ctx context.Context) error

	// RunDone, if set, is told how each run claimed by Run ended (the
	// runner counts results and applies its reboot policy from it).
	RunDone func(run Run, result RunResult)

	// WorkerGroup and WorkerID name the worker in logs.
	WorkerGroup, WorkerID string
	// RootURL is given to tasks as TASKCLUSTER_ROOT_URL.
	RootURL string
	// Capacity is how many tasks run at once (default 1).
	Capacity int
	// TasksDir holds one fresh directory per run (required).
	TasksDir string
	// CachesDir holds the writable caches of payload mounts (default
	// <TasksDir>/_caches); DownloadsDir holds downloaded mount content
	// (default <TasksDir>/_downloads). Both should be on the volume of
	// TasksDir, so that caches move into task directories by renaming.
	CachesDir, DownloadsDir string
	// DiskFreeMin is the free space on the tasks volume under which
	// downloads and caches are evicted before a task (0: never).
	DiskFreeMin uint64
	// PurgeCache, when set, is asked for purge requests before tasks.
	PurgeCache mounts.PurgeSource
	// Version is the agent version written in log headers.
	Version string
	// IdlePollWait is the pause after a claim that returned nothing
	// (default 1 s). The claim is a long poll, so the queue has already
	// waited; a long pause would only add latency for the next task.
	IdlePollWait time.Duration
	// ErrorPollWait is the pause after a failed claim (default 5 s).
	ErrorPollWait time.Duration
	// ReclaimMargin is how long before takenUntil to reclaim (default a
	// third of the claim).
	ReclaimMargin time.Duration
	// KillGrace is the time between interrupting a task's processes and
	// killing them (default 10 s).
	KillGrace time.Duration
	// ChainOfTrustKey signs the chain-of-trust documents of tasks that set
	// features.chainOfTrust; without it such tasks are malformed-payload.
	ChainOfTrustKey ed25519.PrivateKey
	// ChainOfTrustEnvironment is the machine description in those
	// documents.
	ChainOfTrustEnvironment cot.Environment
	// KeepTaskDirs keeps each run's directory and log file after it ends.
	KeepTaskDirs bool
	// TaskUser is the account task commands run as (default
	// platform.DefaultTaskUserMode); New refuses a mode the OS cannot do.
	TaskUser platform.TaskUserMode
	// ConsoleUser, in console mode, is the account expected at the
	// console (the autologin account); empty: whoever is logged in.
	ConsoleUser string
	// TaskUserIDs is the range per-task accounts' uids come from on Linux
	// and macOS (zero: platform.DefaultTaskUserIDs).
	TaskUserIDs platform.TaskUserIDs
	// RecoverUploadFor bounds the upload of the saved log of each run left
	// by a previous agent, before that run is resolved (default 2 minutes).
	RecoverUploadFor time.Duration
	// Logger receives the agent's own logs (default slog.Default()).
	Logger *slog.Logger
}

// Agent claims and runs tasks.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	mounts *mounts.Manager
	// survivors lists the processes of a task user left after the kill;
	// tests stand in for one the kill cannot reach (uninterruptible
	// sleep), which they cannot make on demand.
	survivors func(*platform.TaskUser) ([]int, error)
}

// New checks cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.TasksDir == "" {
		return nil, errors.New("agent: Config.TasksDir is empty; give a directory for task directories")
	}
	if cfg.Capacity < 0 {
		return nil, fmt.Errorf("agent: Config.Capacity is %d; use 1 or more", cfg.Capacity)
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 1
	}
	if cfg.Cancel == nil {
		cfg.Cancel = noCancelWatcher{}
	}
	// Buildbot builds learn of cancellation from their own heartbeats.
	cfg.Cancel = sourceCancelWatcher{inner: cfg.Cancel}
	if cfg.IdlePollWait == 0 {
		cfg.IdlePollWait = time.Second
	}
	if cfg.ErrorPollWait == 0 {
		cfg.ErrorPollWait = 5 * time.Second
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = 10 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	abs, err := filepath.Abs(cfg.TasksDir)
	if err != nil {
		return nil, fmt.Errorf("agent: tasks directory %s: %w", cfg.TasksDir, err)
	}
	cfg.TasksDir = abs
	if cfg.RecoverUploadFor == 0 {
		cfg.RecoverUploadFor = 2 * time.Minute
	}
	if cfg.TaskUser == "" {
		cfg.TaskUser = platform.DefaultTaskUserMode
	}
	if err := platform.CheckTaskUserMode(cfg.TaskUser); err != nil {
		return nil, fmt.Errorf("agent: taskUser: %w", err)
	}
	// The tasks directory and each task's are the runner's (see
	// platform.MakePrivateDir).
	repaired, err := platform.MakePrivateDir(cfg.TasksDir)
	if err != nil {
		return nil, fmt.Errorf("agent: tasks directory (tasksDir): %w", err)
	}
	if repaired != "" {
		cfg.Logger.Warn("repaired the permissions of the tasks directory", "path", cfg.TasksDir, "change", repaired)
	}
	if cfg.CachesDir == "" {
		cfg.CachesDir = filepath.Join(cfg.TasksDir, "_caches")
	}
	if cfg.DownloadsDir == "" {
		cfg.DownloadsDir = filepath.Join(cfg.TasksDir, "_downloads")
	}
	m, err := mounts.New(mounts.Config{
		CachesDir: cfg.CachesDir, DownloadsDir: cfg.DownloadsDir,
		DiskPath: cfg.TasksDir, MinFreeBytes: cfg.DiskFreeMin,
		Purges: cfg.PurgeCache, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &Agent{cfg: cfg, log: cfg.Logger, mounts: m, survivors: (*platform.TaskUser).Survivors}, nil
}

// resumer is a Source that can rebuild a journalled run.
type resumer interface {
	ResumeRun(JournalEntry) Run
}

// Run recovers journalled runs, then claims and runs tasks until ctx is
// done; tasks still running then are stopped and resolved
// exception/worker-shutdown before Run returns.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Source == nil {
		return errors.New("agent: Config.Source is nil; give the source to claim work from")
	}
	if a.cfg.Journal != nil {
		if r, ok := a.cfg.Source.(resumer); ok {
			opts := RecoverOptions{UploadFor: a.cfg.RecoverUploadFor, KeepFiles: a.cfg.KeepTaskDirs}
			if err := a.cfg.Journal.Recover(context.WithoutCancel(ctx), r.ResumeRun, a.log, opts); err != nil {
				a.log.Error("resolving runs left by a previous agent", "error", err)
			}
		}
	}
	// Accounts first: their processes may hold the files.
	a.removeLeftTaskUsers()
	if !a.cfg.KeepTaskDirs {
		a.removeLeftTaskFiles()
	}
	slots := make(chan struct{}, a.cfg.Capacity)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		// Take one slot (waiting for a run to end if all are busy), then
		// every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
	more:
		for n < a.cfg.Capacity {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		runs, err := a.cfg.Source.Claim(ctx, n)
		for i := len(runs); i < n; i++ {
			<-slots
		}
		if ctx.Err() != nil && len(runs) == 0 {
			return nil
		}
		if err != nil {
			a.log.Warn("claim failed", "error", err)
			sleepCtx(ctx, a.cfg.ErrorPollWait)
			continue
		}
		if len(runs) == 0 {
			sleepCtx(ctx, a.cfg.IdlePollWait)
			continue
		}
		for _, run := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				res := a.RunOne(ctx, run, nil)
				if a.cfg.RunDone != nil {
					a.cfg.RunDone(run, res)
				}
			}()
		}
	}
}
