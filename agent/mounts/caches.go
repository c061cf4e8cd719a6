package mounts

// Named writable caches. An idle cache is a directory under the caches
// directory, listed in caches.json with its name, creation time and last
// use. A task takes it (it leaves the index and is moved into the task
// directory) and gives it back after the commands (moved back, listed
// again), so a crash during a task loses that one cache and never lists a
// half-written one. When two tasks on one machine want the same cache at
// once, the second gets a new empty one; the instance given back last is
// kept.
//
//	idle (in index) ──take──▶ in a task ──give back──▶ idle (newest instance wins)
//	       │                       └──purge (onExitStatus.purgeCaches, failure to move)──▶ removed
//	       └──purge request / eviction──▶ removed

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// cacheEntry is one instance of a named cache.
type cacheEntry struct {
	Name string `json:"name"`
	// Dir is the directory's name under the caches directory.
	Dir      string    `json:"dir"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
}

type cacheIndex struct {
	Caches map[string]*cacheEntry `json:"caches"`
}

// caches is the set of named writable caches in one directory.
type caches struct {
	dir string
	now func() time.Time
	mu  sync.Mutex
	idx cacheIndex
}

// openCaches loads the index, forgets entries whose directory is gone and
// removes directories no entry names (left by a crash during a task);
// a corrupt index loses the caches, and the error says so.
func openCaches(dir string, now func() time.Time) (*caches, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create caches directory %s: %w", dir, err)
	}
	c := &caches{dir: dir, now: now}
	loadErr := readJSON(c.indexPath(), &c.idx)
	if loadErr != nil || c.idx.Caches == nil {
		c.idx.Caches = map[string]*cacheEntry{}
	}
	named := map[string]bool{}
	for name, e := range c.idx.Caches {
		if info, err := os.Stat(filepath.Join(dir, e.Dir)); err != nil || !info.IsDir() || filepath.Base(e.Dir) != e.Dir {
			delete(c.idx.Caches, name)
			continue
		}
		named[e.Dir] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list caches directory %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.Name() != "caches.json" && !named[e.Name()] {
			_ = removeTree(filepath.Join(dir, e.Name()))
		}
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if loadErr != nil {
		return c, fmt.Errorf("cache index was unreadable; writable caches start empty: %w", loadErr)
	}
	return c, nil
}

func (c *caches) indexPath() string { return filepath.Join(c.dir, "caches.json") }

func (c *caches) save() error { return writeJSONAtomic(c.indexPath(), &c.idx) }

func (c *caches) path(e *cacheEntry) string { return filepath.Join(c.dir, e.Dir) }

// take returns the idle instance of name, removed from the index, or a new
// entry (existed false) whose directory does not exist yet.
func (c *caches) take(name string) (e *cacheEntry, existed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.idx.Caches[name]; e != nil {
		delete(c.idx.Caches, name)
		if err := c.save(); err != nil {
			c.idx.Caches[name] = e
			return nil, false, err
		}
		return e, true, nil
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, false, fmt.Errorf("name a new cache directory: %w", err)
	}
	now := c.now()
	return &cacheEntry{Name: name, Dir: hex.EncodeToString(b), Created: now, LastUsed: now}, false, nil
}

// giveBack lists e again once its directory is back under the caches
// directory; an older idle instance of the same name is removed.
func (c *caches) giveBack(e *cacheEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if old := c.idx.Caches[e.Name]; old != nil && old.Dir != e.Dir {
		if err := removeTree(c.path(old)); err != nil {
			errs = append(errs, fmt.Errorf("remove older instance of cache %q: %w", e.Name, err))
		}
	}
	e.LastUsed = c.now()
	c.idx.Caches[e.Name] = e
	errs = append(errs, c.save())
	return errors.Join(errs...)
}

// discard removes a cache instance's directory (wherever it is) from disk.
func (c *caches) discard(e *cacheEntry) error {
	if err := removeTree(c.path(e)); err != nil {
		return fmt.Errorf("remove cache %q at %s: %w", e.Name, c.path(e), err)
	}
	return nil
}

// purge removes the idle instance of name if it was created before
// before; it reports whether one was removed.
func (c *caches) purge(name string, before time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.idx.Caches[name]
	// Five minutes of slack for clock skew, as generic-worker allows.
	if e == nil || !e.Created.Add(-5*time.Minute).Before(before) {
		return false, nil
	}
	return true, c.removeLocked(e)
}

// remove removes an idle instance from the index and disk.
func (c *caches) remove(name string, dir string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.idx.Caches[name]
	if e == nil || e.Dir != dir {
		return false, nil
	}
	return true, c.removeLocked(e)
}

func (c *caches) removeLocked(e *cacheEntry) error {
	delete(c.idx.Caches, e.Name)
	rmErr := removeTree(c.path(e))
	if rmErr != nil {
		rmErr = fmt.Errorf("remove cache %q at %s: %w", e.Name, c.path(e), rmErr)
	}
	return errors.Join(rmErr, c.save())
}

// snapshot lists the idle caches for eviction.
func (c *caches) snapshot() []cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]cacheEntry, 0, len(c.idx.Caches))
	for _, e := range c.idx.Caches {
		out = append(out, *e)
	}
	return out
}
