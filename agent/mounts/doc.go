// Package mounts gives a task the payload's `mounts` as generic-worker v44
// does (workers/generic-worker/mounts.go at v44.23.4): file mounts,
// read-only directories unpacked from an archive, and named writable
// directory caches that persist across tasks and reboots.
//
// It owns mount content (another task's artifact, a URL, raw or base64
// text), the download cache keyed by content digest, archive unpacking
// (rar, tar.bz2, tar.gz, tar.xz, tar.zst, zip) that refuses entries
// escaping their directory, the named caches with their index, purge
// requests, and least-recently-used eviction of downloads and caches when
// free disk runs low. It may import platform and internal/*, never the
// agent: the agent hands it the task directory, the run's credentials and
// a log function.
//
// The life of a task's mounts (Manager.Mount, then Mounted.Unmount):
//
//	purge requests applied ─▶ evict LRU while free disk < threshold
//	  ─▶ for each mount in payload order:
//	       file:       content ─▶ download cache ─▶ copy to <taskDir>/<file>
//	       read-only:  content ─▶ download cache ─▶ unpack to <taskDir>/<directory>
//	       cache:      idle cache <name>? move it in : new dir (+ unpack content)
//	  ─▶ commands run ─▶ caches moved back (or removed when purged) ─▶ index saved
//
// The task owns its directory and can put a link (a junction on Windows)
// anywhere in it; the agent, running as root, reaches a cache there only
// through directory handles and follows no link (taskroot.go, move.go).
package mounts
