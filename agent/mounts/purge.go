package mounts

// Purge requests: before a task, the purge-cache service is asked which
// caches of this worker pool must go, as generic-worker does
// (workers/generic-worker/mounts.go purgeCaches at v44.23.4): always when
// the task mounts a writable cache, otherwise at most every 6 hours; with
// `since` 5 minutes before the previous query (clock skew). A cache
// created before a request's `before` (less 5 minutes) is removed. When the
// service cannot be reached the caches are kept and the task log says so.

import (
	"context"
	"fmt"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcpurgecache"
)

// PurgeRequest asks for a cache created before Before to be removed.
type PurgeRequest struct {
	CacheName string
	Before    time.Time
}

// PurgeSource lists the purge requests since a time (zero: all open ones).
type PurgeSource interface {
	PurgeRequests(ctx context.Context, since time.Time) ([]PurgeRequest, error)
}

// PurgeCacheService is the purge-cache service of a Taskcluster deployment.
type PurgeCacheService struct {
	RootURL string
	// WorkerPoolID is "<provisionerId>/<workerType>".
	WorkerPoolID string
	// Credentials returns the worker's current credentials.
	Credentials func() tcclient.Credentials
}

// PurgeRequests calls purgeRequests (client-go retries transient errors).
func (p *PurgeCacheService) PurgeRequests(ctx context.Context, since time.Time) ([]PurgeRequest, error) {
	var creds *tcclient.Credentials
	if p.Credentials != nil {
		c := p.Credentials()
		creds = &c
	}
	pc := tcpurgecache.New(creds, p.RootURL)
	pc.Context = ctx
	s := ""
	if !since.IsZero() {
		s = tcclient.Time(since).String()
	}
	resp, err := pc.PurgeRequests(p.WorkerPoolID, s)
	if err != nil {
		return nil, fmt.Errorf("purge-cache purgeRequests for %s: %w", p.WorkerPoolID, err)
	}
	out := make([]PurgeRequest, 0, len(resp.Requests))
	for _, r := range resp.Requests {
		out = append(out, PurgeRequest{CacheName: r.CacheName, Before: time.Time(r.Before)})
	}
	return out, nil
}

// applyPurges asks for purge requests when due and removes the idle
// caches they name.
func (m *Manager) applyPurges(ctx context.Context, ms []Mount, logf func(string, ...any)) {
	if m.cfg.Purges == nil {
		return
	}
	writable := false
	for _, mt := range ms {
		writable = writable || mt.Kind == WritableCache
	}
	m.purgeMu.Lock()
	defer m.purgeMu.Unlock()
	now := m.cfg.Now()
	if !writable && !m.lastPurgeAt.IsZero() && now.Round(0).Sub(m.lastPurgeAt) < 6*time.Hour {
		return
	}
	var since time.Time
	if !m.lastPurgeAt.IsZero() {
		since = m.lastPurgeAt.Add(-5 * time.Minute)
	}
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	reqs, err := m.cfg.Purges.PurgeRequests(qctx, since)
	if err != nil {
		logf("Could not reach the purge-cache service to see if caches need purging; keeping them: %v", err)
		return
	}
	m.lastPurgeAt = now
	for _, r := range reqs {
		removed, err := m.caches.purge(r.CacheName, r.Before)
		switch {
		case err != nil:
			logf("Purge request for cache %q: %v", r.CacheName, err)
		case removed:
			logf("Removed writable directory cache %q: purge requested for caches created before %s", r.CacheName, r.Before.UTC().Format(time.RFC3339))
		}
	}
}
