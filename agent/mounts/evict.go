package mounts

// Eviction: before a task's mounts are made, while free disk on the tasks
// volume is under the threshold (the runner's disk health check,
// checks.diskFreeMinMB), the least recently used download is removed, and
// once no idle download is left, the least recently used idle writable
// cache. Downloads go first because fetching again is quicker than
// rebuilding what a cache holds (generic-worker's garbageCollection makes
// the same choice, ranking by use count instead of last use). Content a
// running task is using, and caches inside a task, are never removed.

import (
	"cmp"
	"fmt"
	"slices"
)

// evictable is one thing eviction may remove.
type evictable struct {
	what   string
	used   int64 // last use, Unix nanoseconds
	remove func() (bool, error)
}

// Evict removes least recently used downloads, then caches, until free
// disk reaches the threshold or nothing idle is left. It returns what it
// removed, one description each.
func (m *Manager) Evict() ([]string, error) {
	if m.cfg.MinFreeBytes == 0 {
		return nil, nil
	}
	free, err := m.cfg.FreeBytes(m.cfg.DiskPath)
	if err != nil {
		return nil, fmt.Errorf("evict: free disk on %s: %w", m.cfg.DiskPath, err)
	}
	if free >= m.cfg.MinFreeBytes {
		return nil, nil
	}
	var dl, cs []evictable
	for digest, e := range m.downloads.snapshot() {
		dl = append(dl, evictable{
			what:   fmt.Sprintf("download %s (%d bytes)", digest, e.Size),
			used:   e.LastUsed.UnixNano(),
			remove: func() (bool, error) { return m.downloads.remove(digest) },
		})
	}
	for _, e := range m.caches.snapshot() {
		cs = append(cs, evictable{
			what:   fmt.Sprintf("writable cache %q", e.Name),
			used:   e.LastUsed.UnixNano(),
			remove: func() (bool, error) { return m.caches.remove(e.Name, e.Dir) },
		})
	}
	byUse := func(a, b evictable) int { return cmp.Compare(a.used, b.used) }
	slices.SortFunc(dl, byUse)
	slices.SortFunc(cs, byUse)
	var removed []string
	for _, c := range append(dl, cs...) {
		ok, err := c.remove()
		if err != nil {
			return removed, fmt.Errorf("evict %s: %w", c.what, err)
		}
		if !ok {
			continue
		}
		removed = append(removed, c.what)
		m.log.Info("evicted to free disk", "what", c.what)
		if free, err = m.cfg.FreeBytes(m.cfg.DiskPath); err != nil {
			return removed, fmt.Errorf("evict: free disk on %s: %w", m.cfg.DiskPath, err)
		}
		if free >= m.cfg.MinFreeBytes {
			return removed, nil
		}
	}
	return removed, fmt.Errorf("evict: only %d MB free on %s after removing every idle download and cache (threshold %d MB)",
		free>>20, m.cfg.DiskPath, m.cfg.MinFreeBytes>>20)
}
