package mounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
)

// Config configures a Manager.
type Config struct {
	// CachesDir holds the idle writable caches and their index (required).
	CachesDir string
	// DownloadsDir holds the download cache and its index (required).
	DownloadsDir string
	// DiskPath is where free disk is measured for eviction (the tasks
	// directory).
	DiskPath string
	// MinFreeBytes is the free disk under which downloads and caches are
	// evicted; 0 turns eviction off.
	MinFreeBytes uint64
	// FreeBytes measures free disk (default: the volume's free bytes).
	FreeBytes func(path string) (uint64, error)
	// Purges, when set, is asked for purge requests before tasks.
	Purges PurgeSource
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the manager's own logs (default slog.Default()).
	Logger *slog.Logger
}

// Manager makes and removes the mounts of tasks on one machine.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	downloads *downloads
	caches    *caches

	purgeMu     sync.Mutex
	lastPurgeAt time.Time
}

// New opens the caches and downloads directories. Unreadable indexes are
// rebuilt (downloads) or started afresh (caches) and logged; they do not
// stop the agent.
func New(cfg Config) (*Manager, error) {
	if cfg.CachesDir == "" || cfg.DownloadsDir == "" {
		return nil, errors.New("mounts: Config.CachesDir and Config.DownloadsDir are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FreeBytes == nil {
		cfg.FreeBytes = func(p string) (uint64, error) {
			u, err := disk.Usage(p)
			if err != nil {
				return 0, fmt.Errorf("disk usage of %s: %w", p, err)
			}
			return u.Free, nil
		}
	}
	if cfg.DiskPath == "" {
		cfg.DiskPath = cfg.CachesDir
	}
	m := &Manager{cfg: cfg, log: cfg.Logger}
	var err error
	if m.downloads, err = openDownloads(cfg.DownloadsDir, cfg.Now); m.downloads == nil {
		return nil, fmt.Errorf("mounts: %w", err)
	} else if err != nil {
		m.log.Warn("mounts: download cache", "error", err)
	}
	if m.caches, err = openCaches(cfg.CachesDir, cfg.Now); m.caches == nil {
		return nil, fmt.Errorf("mounts: %w", err)
	} else if err != nil {
		m.log.Warn("mounts: writable caches", "error", err)
	}
	return m, nil
}

// Task is what Mount needs to know about one run.
type Task struct {
	// Dir is the task directory the mount paths are relative to.
	Dir string
	// Mounts are the payload's mounts, in order.
	Mounts []Mount
	// Fetcher fetches artifact and URL content with the run's credentials.
	Fetcher *Fetcher
	// Logf writes one line to the task log.
	Logf func(format string, args ...any)
}

// TaskError is a mount the task itself got wrong (content that cannot be
// fetched or unpacked, a wrong digest, an escaping archive, a path that
// cannot hold the mount): the task fails. Other errors are the worker's.
type TaskError struct{ Err error }

func (e *TaskError) Error() string { return e.Err.Error() }
func (e *TaskError) Unwrap() error { return e.Err }

// Mounted is a task's mounts, to be removed after its commands.
type Mounted struct {
	m *Manager
	// dir is the task directory, which the task owns: the caches in it are
	// reached through directory handles (taskroot.go).
	dir    string
	logf   func(string, ...any)
	caches []takenCache
	unpins []func()
}

type takenCache struct {
	entry *cacheEntry
	// rel is the cache's place relative to the task directory; target is
	// the whole path, for messages.
	rel    string
	target string
	// fresh is a cache created for this task: if the mounts fail, it is
	// removed rather than kept half made.
	fresh bool
}

// Mount applies purge requests, evicts what free disk requires, and makes
// t's mounts in payload order. On error the mounts made so far are already
// undone (caches given back).
func (m *Manager) Mount(ctx context.Context, t Task) (*Mounted, error) {
	logf := func(format string, args ...any) { t.Logf("[mounts] "+format, args...) }
	md := &Mounted{m: m, dir: t.Dir, logf: logf}
	m.applyPurges(ctx, t.Mounts, logf)
	if removed, err := m.Evict(); err != nil {
		logf("Low disk: %v", err)
	} else {
		for _, r := range removed {
			logf("Removed %s to free disk", r)
		}
	}
	for _, mt := range t.Mounts {
		if err := m.mountOne(ctx, t, mt, md, logf); err != nil {
			if uerr := md.unmount(false, true); uerr != nil {
				logf("%v", uerr)
			}
			return nil, err
		}
	}
	return md, nil
}

func (m *Manager) mountOne(ctx context.Context, t Task, mt Mount, md *Mounted, logf func(string, ...any)) error {
	rel := filepath.Clean(filepath.FromSlash(strings.ReplaceAll(mt.Path, `\`, "/")))
	target := filepath.Join(t.Dir, rel)
	// A cache or an earlier mount may hold a link (a task can leave one
	// pointing anywhere): the agent must not write through it.
	if err := noLinks(t.Dir, target); err != nil {
		return &TaskError{fmt.Errorf("%s: %w", mt.Field, err)}
	}
	switch mt.Kind {
	case FileMount:
		file, _, err := m.fetch(ctx, t, mt.Content, md, logf)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return &TaskError{fmt.Errorf("%s: create directory for %s: %w", mt.Field, mt.Path, err)}
		}
		logf("Copying %s to %s", mt.Content, target)
		if err := copyFile(file, target, 0o644); err != nil {
			return &TaskError{fmt.Errorf("%s: not able to mount %s at %s: %w", mt.Field, mt.Content, target, err)}
		}
	case ReadOnlyDirectory:
		return m.unpackInto(ctx, t, mt, target, md, logf)
	case WritableCache:
		e, existed, err := m.caches.take(mt.CacheName)
		if err != nil {
			return err
		}
		if existed {
			logf("Moving existing writable directory cache %s from %s to %s", mt.CacheName, m.caches.path(e), target)
			if err := moveIntoTask(m.caches.dir, e.Dir, t.Dir, rel); err != nil {
				// The instance stays where it is, listed again.
				if gerr := m.caches.giveBack(e); gerr != nil {
					logf("%v", gerr)
				}
				return &TaskError{fmt.Errorf("%s: not able to move cache %q to %s: %w", mt.Field, mt.CacheName, mt.Path, err)}
			}
			md.caches = append(md.caches, takenCache{entry: e, rel: rel, target: target})
			return nil
		}
		logf("No existing writable directory cache %q - creating it at %s", mt.CacheName, target)
		md.caches = append(md.caches, takenCache{entry: e, rel: rel, target: target, fresh: true})
		if mt.Content != nil {
			return m.unpackInto(ctx, t, mt, target, md, logf)
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return &TaskError{fmt.Errorf("%s: create %s: %w", mt.Field, target, err)}
		}
	}
	return nil
}

func (m *Manager) unpackInto(ctx context.Context, t Task, mt Mount, target string, md *Mounted, logf func(string, ...any)) error {
	file, _, err := m.fetch(ctx, t, mt.Content, md, logf)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return &TaskError{fmt.Errorf("%s: create %s: %w", mt.Field, target, err)}
	}
	logf("Extracting %s file %s to %s", mt.Format, mt.Content, target)
	started := m.cfg.Now()
	if err := Unpack(mt.Format, file, target); err != nil {
		return &TaskError{fmt.Errorf("%s: %w", mt.Field, err)}
	}
	logf("Extracted %s in %s", mt.Content, m.cfg.Now().Sub(started).Round(time.Millisecond))
	return nil
}

// noLinks reports an error when an existing element of target below root
// is a symbolic link or, on Windows, a junction or other name-surrogate
// reparse point (which Lstat reports as irregular, not as a link).
func noLinks(root, target string) error {
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == "." {
		return nil
	}
	cur := root
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, el)
		info, err := os.Lstat(cur)
		if err != nil {
			return nil
		}
		if info.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
			return fmt.Errorf("%s is a symbolic link or junction; a mount path may not go through one", cur)
		}
	}
	return nil
}

// fetch makes sure the content is in the download cache and pins it for
// the task's lifetime.
func (m *Manager) fetch(ctx context.Context, t Task, c *Content, md *Mounted, logf func(string, ...any)) (string, string, error) {
	fetcher := t.Fetcher
	if fetcher == nil {
		fetcher = &Fetcher{}
	}
	file, digest, unpin, err := m.downloads.ensure(ctx, c, fetcher.fetcher(c), logf)
	if err != nil {
		var fe *FetchError
		var me *MismatchError
		if errors.As(err, &fe) || errors.As(err, &me) {
			return "", "", &TaskError{err}
		}
		return "", "", err
	}
	md.unpins = append(md.unpins, unpin)
	return file, digest, nil
}

// CacheNames lists the writable caches the task holds.
func (md *Mounted) CacheNames() []string {
	var out []string
	for _, c := range md.caches {
		out = append(out, c.entry.Name)
	}
	return out
}

// Unmount gives the writable caches back, or removes them when purge is
// set (onExitStatus.purgeCaches, or processes of the task that survive
// it). A cache that cannot be moved back is removed and named in the
// error, which fails the task as generic-worker fails it ("Could not
// persist cache"). The task may have replaced any directory on a cache's
// path by a link: the cache is then neither kept nor purged through it,
// and stays in the task directory, which is removed after the task.
func (md *Mounted) Unmount(purge bool) error { return md.unmount(purge, false) }

func (md *Mounted) unmount(purge, failed bool) error {
	var errs []error
	c := md.m.caches
	for _, tc := range md.caches {
		if failed && tc.fresh {
			_ = removeInTask(md.dir, tc.rel)
			continue
		}
		if purge {
			md.logf("Purging writable directory cache %q", tc.entry.Name)
			if err := removeInTask(md.dir, tc.rel); err != nil {
				errs = append(errs, fmt.Errorf("purge cache %q at %s: %w", tc.entry.Name, tc.target, err))
			}
			continue
		}
		md.logf("Preserving cache: moving %s to %s", tc.target, c.path(tc.entry))
		if err := moveOutOfTask(md.dir, tc.rel, c.dir, tc.entry.Dir); err != nil {
			// Removed, or replaced (or a parent replaced) by a file or a
			// link: nothing to keep.
			_ = c.discard(tc.entry)
			errs = append(errs, fmt.Errorf("could not persist cache %q: %w", tc.entry.Name, err))
			continue
		}
		if err := c.giveBack(tc.entry); err != nil {
			errs = append(errs, err)
		}
	}
	md.caches = nil
	for _, u := range md.unpins {
		u()
	}
	md.unpins = nil
	return errors.Join(errs...)
}
