package agent

// A standalone agent is what `runner run --config FILE` runs: the agent
// wired from a FileConfig with its live log server and, when a Pulse URL is
// set, the task-exception subscription for fast cancellation.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/agent/mounts"
	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/platform"
)

// RunStandalone runs an agent from a validated configuration until ctx is
// done, then stops the running tasks (resolved worker-shutdown) and
// returns.
func RunStandalone(ctx context.Context, c *FileConfig, version string, log *slog.Logger) error {
	return RunStandaloneWith(ctx, c, version, log, nil)
}

// RunStandaloneWith is RunStandalone with a hook that adjusts the agent's
// Config before the agent is made (the runner wraps the source and sets
// Preflight and RunDone there).
func RunStandaloneWith(ctx context.Context, c *FileConfig, version string, log *slog.Logger, adjust func(*Config)) error {
	if log == nil {
		log = slog.Default()
	}
	journal, err := OpenJournal(filepath.Join(c.StateDir, "journal"))
	if err != nil {
		return err
	}
	cfg := Config{
		Source: NewTCSource(TCSourceConfig{
			RootURL:     c.RootURL,
			Credentials: tcclient.Credentials{ClientID: c.Credentials.ClientID, AccessToken: c.Credentials.AccessToken, Certificate: c.Credentials.Certificate},
			TaskQueueID: c.TaskQueueID,
			WorkerGroup: c.WorkerGroup,
			WorkerID:    c.WorkerID,
			Logger:      log,
		}),
		Journal:      journal,
		WorkerGroup:  c.WorkerGroup,
		WorkerID:     c.WorkerID,
		RootURL:      c.RootURL,
		Capacity:     c.Capacity,
		TasksDir:     c.TasksDir,
		CachesDir:    c.CachesDir,
		DownloadsDir: c.DownloadsDir,
		PurgeCache: NewPurgeCache(c.RootURL, c.TaskQueueID, func() tcclient.Credentials {
			return tcclient.Credentials{ClientID: c.Credentials.ClientID, AccessToken: c.Credentials.AccessToken, Certificate: c.Credentials.Certificate}
		}),
		Version:       version,
		IdlePollWait:  c.IdlePollWait.Duration,
		ErrorPollWait: c.ErrorPollWait.Duration,
		ReclaimMargin: c.ReclaimMargin.Duration,
		KillGrace:     c.KillGrace.Duration,
		KeepTaskDirs:  c.KeepTaskDirs,
		Logger:        log,
	}
	mode, err := platform.ParseTaskUserMode(c.TaskUser)
	if err != nil {
		return fmt.Errorf("taskUser: %w", err)
	}
	cfg.TaskUser = mode
	cfg.ConsoleUser = c.ConsoleUser
	if cfg.TaskUserIDs, err = platform.ParseTaskUserIDs(c.TaskUserIDs); err != nil {
		return fmt.Errorf("taskUserIds: %w", err)
	}

	if path := c.ChainOfTrust.Ed25519SigningKey; path != "" {
		key, err := loadSigningKey(path, log)
		if err != nil {
			return fmt.Errorf("chain of trust (chainOfTrust.ed25519SigningKey): %w", err)
		}
		cfg.ChainOfTrustKey = key
		cfg.ChainOfTrustEnvironment.PrivateIPAddress = localAddressToward(c.RootURL)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()

	if c.LiveLog.Listen != "" {
		srv := NewLiveLogServer()
		ln, err := net.Listen("tcp", c.LiveLog.Listen)
		if err != nil {
			return fmt.Errorf("live log: listen on %s (livelog.listen): %w", c.LiveLog.Listen, err)
		}
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("live log server", "error", err)
			}
		}()
		defer func() { _ = hs.Close() }()
		cfg.LiveLogServer = srv
		cfg.LiveLogURL = c.LiveLog.PublicURL
	}

	if c.PulseURL != "" {
		bus, err := pulse.DialAMQP(ctx, c.PulseURL, log)
		if err != nil {
			return fmt.Errorf("connect to Pulse (pulseURL): %w", err)
		}
		// The subscription ends before its connection does.
		defer func() { stopBg(); _ = bus.Close() }()
		w := NewPulseCancelWatcher(bus, c.PulseQueueName(), c.ProvisionerID, c.WorkerType, c.WorkerGroup, c.WorkerID, log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(bgCtx); err != nil {
				log.Error("Pulse cancellation subscription", "error", err)
			}
		}()
		cfg.Cancel = w
	} else {
		cfg.Cancel = &PollCancelWatcher{Interval: c.CancelPollInterval.Duration, Logger: log}
	}

	if adjust != nil {
		adjust(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		return err
	}
	log.Info("agent started", "taskQueueId", c.TaskQueueID, "workerGroup", c.WorkerGroup, "workerId", c.WorkerID, "capacity", cfg.Capacity, "taskUser", string(cfg.TaskUser))
	if cfg.TaskUser == platform.TaskUserService {
		log.Warn("tasks run as the runner's own account (taskUser: service): a task can read the runner's credentials and change the machine for later tasks; remove taskUser: service from the configuration to run each task as a fresh task user (per-task, the default; docs/operations.md, Task users)")
	}
	return a.Run(ctx)
}

// NewPurgeCache is the purge-cache service of the deployment at rootURL,
// asked about the worker pool taskQueueID with the worker's credentials.
func NewPurgeCache(rootURL, taskQueueID string, creds func() tcclient.Credentials) mounts.PurgeSource {
	return &mounts.PurgeCacheService{RootURL: rootURL, WorkerPoolID: taskQueueID, Credentials: creds}
}
