package mounts

// The download cache: every fetched or inline content is kept once, in a
// file named by its SHA-256 digest, so that the same toolchain is fetched
// once per machine however many tasks (or upstream tasks) name it. An
// index (downloads.json) records each file's size and last use, for
// eviction, and which digest each source (artifact or URL) gave last time,
// so that content without a required sha256 is found again as
// generic-worker finds it (by source, workers/generic-worker/mounts.go
// ensureCached at v44.23.4).
//
//	required sha256 in the index ──▶ hit (digest re-checked)
//	source in the index          ──▶ hit when its digest matches what is required
//	otherwise                    ──▶ fetch to a temp file, hash, rename to <digest>
//	                                  mismatch with the required digest: removed, task fails

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// downloadEntry is one cached content file.
type downloadEntry struct {
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
}

type downloadIndex struct {
	// Files maps a digest to its file's facts.
	Files map[string]*downloadEntry `json:"files"`
	// Sources maps a source key to the digest it gave.
	Sources map[string]string `json:"sources"`
}

// downloads is the digest-keyed download cache in one directory.
type downloads struct {
	dir   string
	now   func() time.Time
	mu    sync.Mutex
	idx   downloadIndex
	pins  map[string]int         // digest → mounts using it now
	locks map[string]*sync.Mutex // source key → one fetch at a time
}

var digestName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// openDownloads loads the index, adopting content files it lacks and
// forgetting entries whose file is gone; a corrupt index is rebuilt from
// the files, and the error says so.
func openDownloads(dir string, now func() time.Time) (*downloads, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create downloads directory %s: %w", dir, err)
	}
	d := &downloads{dir: dir, now: now, pins: map[string]int{}, locks: map[string]*sync.Mutex{}}
	loadErr := readJSON(d.indexPath(), &d.idx)
	if loadErr != nil {
		d.idx = downloadIndex{}
	}
	if d.idx.Files == nil {
		d.idx.Files = map[string]*downloadEntry{}
	}
	if d.idx.Sources == nil {
		d.idx.Sources = map[string]string{}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list downloads directory %s: %w", dir, err)
	}
	onDisk := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case digestName.MatchString(name):
			onDisk[name] = true
			if d.idx.Files[name] == nil {
				info, err := e.Info()
				if err != nil {
					continue
				}
				d.idx.Files[name] = &downloadEntry{Size: info.Size(), Created: info.ModTime(), LastUsed: info.ModTime()}
			}
		case name != "downloads.json":
			// A fetch cut short by a crash, or an index's temp file.
			_ = removeTree(filepath.Join(dir, name))
		}
	}
	for digest := range d.idx.Files {
		if !onDisk[digest] {
			delete(d.idx.Files, digest)
		}
	}
	d.forgetDanglingSources()
	if err := d.save(); err != nil {
		return nil, err
	}
	if loadErr != nil {
		return d, fmt.Errorf("download cache index was unreadable and was rebuilt from %s: %w", dir, loadErr)
	}
	return d, nil
}

func (d *downloads) indexPath() string { return filepath.Join(d.dir, "downloads.json") }

func (d *downloads) path(digest string) string { return filepath.Join(d.dir, digest) }

// save writes the index. Caller holds d.mu or owns d alone.
func (d *downloads) save() error { return writeJSONAtomic(d.indexPath(), &d.idx) }

func (d *downloads) forgetDanglingSources() {
	for k, digest := range d.idx.Sources {
		if d.idx.Files[digest] == nil {
			delete(d.idx.Sources, k)
		}
	}
}

// fetchFunc writes content to w; it retries transient errors itself and
// may be called again after a partial write only through a fresh w.
type fetchFunc func(ctx context.Context, w io.WriteSeeker) error

// MismatchError is content whose digest is not the one the task requires.
type MismatchError struct {
	Content  string
	Expected string
	Actual   string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s has SHA256 %s but the task requires SHA256 %s", e.Content, e.Actual, e.Expected)
}

// ensure returns the cached file holding c, fetching it when needed, and
// pins it until unpin is called.
func (d *downloads) ensure(ctx context.Context, c *Content, fetch fetchFunc, logf func(string, ...any)) (file, digest string, unpin func(), err error) {
	if b, ok, err := c.inline(); ok {
		if err != nil {
			return "", "", nil, fmt.Errorf("decode %s: %w", c, err)
		}
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:])
		if !d.hit(digest) {
			if err := d.store(digest, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
				return "", "", nil, err
			}
		}
		return d.path(digest), digest, d.pin(digest), nil
	}

	key := c.sourceKey()
	lock := d.sourceLock(key)
	lock.Lock()
	defer lock.Unlock()

	if c.SHA256 != "" && d.hit(c.SHA256) {
		if err := d.verify(c.SHA256); err == nil {
			logf("Found existing download of %s with the required SHA256 %s", c, c.SHA256)
			return d.path(c.SHA256), c.SHA256, d.pin(c.SHA256), nil
		} else {
			logf("Cached download %s is damaged (%v); fetching %s again", c.SHA256, err, c)
		}
	}
	d.mu.Lock()
	known, seen := d.idx.Sources[key]
	d.mu.Unlock()
	if seen && c.SHA256 == "" && d.hit(known) {
		if err := d.verify(known); err == nil {
			logf("Found existing download of %s with SHA256 %s (the task requires no SHA256, so its authenticity is not verified)", c, known)
			return d.path(known), known, d.pin(known), nil
		}
	}
	if seen && c.SHA256 != "" && known != c.SHA256 {
		logf("Existing download of %s has SHA256 %s but the task requires %s; fetching it again", c, known, c.SHA256)
	}

	logf("Downloading %s", c)
	started := d.now()
	tmp, err := os.CreateTemp(d.dir, "fetch-*")
	if err != nil {
		return "", "", nil, fmt.Errorf("create download file in %s: %w", d.dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	ferr := fetch(ctx, tmp)
	if ferr == nil {
		_, ferr = tmp.Seek(0, io.SeekStart)
	}
	var size int64
	h := sha256.New()
	if ferr == nil {
		size, ferr = io.Copy(h, tmp)
	}
	cerr := tmp.Close()
	if ferr != nil {
		return "", "", nil, &FetchError{Content: c.String(), Err: ferr}
	}
	if cerr != nil {
		return "", "", nil, fmt.Errorf("write download of %s: %w", c, cerr)
	}
	digest = hex.EncodeToString(h.Sum(nil))
	logf("Downloaded %d bytes with SHA256 %s from %s in %s", size, digest, c, d.now().Sub(started).Round(time.Millisecond))
	if c.SHA256 != "" && c.SHA256 != digest {
		return "", "", nil, &MismatchError{Content: c.String(), Expected: c.SHA256, Actual: digest}
	}
	if c.SHA256 == "" {
		logf("The task gives no SHA256 for %s, so its authenticity cannot be verified; add \"sha256\": %q to pin it", c, digest)
	}
	if err := d.adopt(tmpName, digest, size, key); err != nil {
		return "", "", nil, err
	}
	return d.path(digest), digest, d.pin(digest), nil
}

// FetchError is content that could not be fetched: a task failure.
type FetchError struct {
	Content string
	Err     error
}

func (e *FetchError) Error() string { return fmt.Sprintf("could not fetch %s: %v", e.Content, e.Err) }
func (e *FetchError) Unwrap() error { return e.Err }

func (d *downloads) sourceLock(key string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		d.locks[key] = l
	}
	return l
}

// hit reports whether digest is cached and marks it used.
func (d *downloads) hit(digest string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.idx.Files[digest]
	if e == nil {
		return false
	}
	if _, err := os.Stat(d.path(digest)); err != nil {
		delete(d.idx.Files, digest)
		d.forgetDanglingSources()
		return false
	}
	e.LastUsed = d.now()
	_ = d.save()
	return true
}

// verify re-hashes a cached file: the task may not change the cache, but
// a damaged disk or a bug must not hand it wrong content.
func (d *downloads) verify(digest string) error {
	f, err := os.Open(d.path(digest))
	if err != nil {
		return fmt.Errorf("open cached download: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read cached download %s: %w", f.Name(), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		d.mu.Lock()
		delete(d.idx.Files, digest)
		d.forgetDanglingSources()
		_ = d.save()
		d.mu.Unlock()
		_ = os.Remove(d.path(digest))
		return fmt.Errorf("file has SHA256 %s", got)
	}
	return nil
}

// store writes content under digest (inline content, whose digest is known).
func (d *downloads) store(digest string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(d.dir, "fetch-*")
	if err != nil {
		return fmt.Errorf("create download file in %s: %w", d.dir, err)
	}
	defer os.Remove(tmp.Name())
	werr := write(tmp)
	info, serr := tmp.Stat()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	return d.adopt(tmp.Name(), digest, info.Size(), "")
}

// adopt renames a complete temp file to its digest and indexes it.
func (d *downloads) adopt(tmp, digest string, size int64, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Rename(tmp, d.path(digest)); err != nil {
		if _, serr := os.Stat(d.path(digest)); serr != nil {
			return fmt.Errorf("store download %s: %w", digest, err)
		}
		// Another fetch stored the same content meanwhile.
	}
	now := d.now()
	if e := d.idx.Files[digest]; e != nil {
		e.LastUsed = now
	} else {
		d.idx.Files[digest] = &downloadEntry{Size: size, Created: now, LastUsed: now}
	}
	if key != "" {
		d.idx.Sources[key] = digest
	}
	return d.save()
}

func (d *downloads) pin(digest string) func() {
	d.mu.Lock()
	d.pins[digest]++
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.pins[digest]--
			if d.pins[digest] == 0 {
				delete(d.pins, digest)
			}
			d.mu.Unlock()
		})
	}
}

// remove deletes an unpinned cached file; it reports false when the file
// is in use or gone.
func (d *downloads) remove(digest string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pins[digest] > 0 || d.idx.Files[digest] == nil {
		return false, nil
	}
	if err := os.Remove(d.path(digest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove cached download %s: %w", digest, err)
	}
	delete(d.idx.Files, digest)
	d.forgetDanglingSources()
	return true, d.save()
}

// snapshot lists the cached files for eviction.
func (d *downloads) snapshot() map[string]downloadEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]downloadEntry, len(d.idx.Files))
	for k, e := range d.idx.Files {
		out[k] = *e
	}
	return out
}
