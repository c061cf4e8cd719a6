package agent

// A run's mounts (agent/mounts): made after the payload is accepted and
// the claim is being reclaimed, before the first command; removed after
// the artifacts are uploaded (a cache may hold an artifact), as
// generic-worker stops its mounts feature after the upload.
//
//	mount ──ok──▶ commands ──▶ artifacts ──▶ unmount (caches kept, or purged by exit code)
//	  ├─ task's fault (fetch, sha256, unpack, escape) ──▶ failed, no command runs
//	  ├─ cancelled / claim lost / shutdown while fetching ──▶ as for the commands
//	  └─ worker's fault ──▶ exception/internal-error

import (
	"context"
	"errors"
	"slices"

	"github.com/labrunner/labrunner/agent/mounts"
)

// mount makes the payload's mounts; the outcome is set when it fails.
func (a *Agent) mount(ctx, shutdown context.Context, run Run, spec *Payload, taskDir string, tl *taskLog, gone, cancelled <-chan struct{}) (*mounts.Mounted, *outcome) {
	if len(spec.Mounts) == 0 && a.cfg.PurgeCache == nil && a.cfg.DiskFreeMin == 0 {
		return nil, nil
	}
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	why := make(chan outcome, 1)
	go func() {
		select {
		case <-gone:
			why <- outcome{exitCode: -1, gone: true}
		case <-cancelled:
			why <- outcome{exitCode: -1, gone: true}
		case <-shutdown.Done():
			why <- outcome{exitCode: -1, shutdown: true}
		case <-mctx.Done():
			return
		}
		stop()
	}()
	md, err := a.mounts.Mount(mctx, mounts.Task{
		Dir:    taskDir,
		Mounts: spec.Mounts,
		Fetcher: &mounts.Fetcher{
			RootURL:     a.cfg.RootURL,
			Credentials: run.Credentials(),
		},
		Logf: tl.Printf,
	})
	if err == nil {
		return md, nil
	}
	stop()
	select {
	case o := <-why:
		tl.Printf("[mounts] Stopped: %v", err)
		return nil, &o
	default:
	}
	var te *mounts.TaskError
	if errors.As(err, &te) {
		tl.Printf("[mounts] %v", err)
		return nil, &outcome{exitCode: -1, mountFailed: err}
	}
	tl.Printf("[mounts] Worker error: %v", err)
	return nil, &outcome{exitCode: -1, internal: err}
}

// unmount gives the caches back, or purges them when the last command's
// exit code is one of onExitStatus.purgeCaches, or when processes of the
// task user survived the task (they could still be writing in the caches,
// and the next task would get what they write); a cache that cannot be
// kept fails the task as in generic-worker.
func (a *Agent) unmount(md *mounts.Mounted, spec *Payload, tl *taskLog, o *outcome) {
	if md == nil {
		return
	}
	purge := false
	switch {
	case len(md.CacheNames()) == 0:
	case o.userKept:
		tl.Printf("[mounts] Processes of the task user survive the task: its writable caches are purged, not kept")
		purge = true
	case o.exitCode > 0 && slices.Contains(spec.OnExitStatus.PurgeCaches, o.exitCode):
		tl.Printf("[mounts] Exit code %d is in onExitStatus.purgeCaches: the writable caches are purged", o.exitCode)
		purge = true
	}
	if err := md.Unmount(purge); err != nil {
		tl.Printf("[mounts] %v", err)
		if o.mountFailed == nil {
			o.mountFailed = err
		}
	}
}
