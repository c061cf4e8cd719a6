package agent

// A pool whose source is "both" claims from Taskcluster and from the
// Buildbot bridge. Neither may starve the other:
//
//	claim #n ──ask sources[n mod k] first──▶ runs? return them
//	                                     └─ nothing ──▶ ask the next source, and so on
//
// Which source goes first rotates on every claim, so a source that always
// has work cannot keep the other from being asked. A source that fails is
// logged and skipped for that claim; the error is returned only when every
// source failed.
//
// A claim is abandoned as soon as ctx is done (a drain, a move, a
// shutdown): the source being asked gives up its long poll (and gives back
// what it claimed in that instant, see BBSource.Claim and TCSource.Claim)
// and the others are not asked.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// MultiSource claims from several sources in rotation.
type MultiSource struct {
	sources []Source
	log     *slog.Logger

	mu   sync.Mutex
	next int
}

// NewMultiSource returns a source that rotates over sources.
func NewMultiSource(log *slog.Logger, sources ...Source) (*MultiSource, error) {
	if len(sources) == 0 {
		return nil, errors.New("agent: NewMultiSource needs at least one source")
	}
	if log == nil {
		log = slog.Default()
	}
	return &MultiSource{sources: sources, log: log}, nil
}

// Claim asks the sources in turn, starting with the one after the source
// that went first last time, until one returns runs.
func (m *MultiSource) Claim(ctx context.Context, max int) ([]Run, error) {
	m.mu.Lock()
	first := m.next
	m.next = (m.next + 1) % len(m.sources)
	m.mu.Unlock()
	var errs []error
	for i := range m.sources {
		if ctx.Err() != nil {
			return nil, nil
		}
		src := m.sources[(first+i)%len(m.sources)]
		runs, err := src.Claim(ctx, max)
		if ctx.Err() != nil && len(runs) == 0 {
			return nil, nil
		}
		if err != nil {
			m.log.Warn("claim from one source failed; asking the next", "source", fmt.Sprintf("%T", src), "error", err)
			errs = append(errs, err)
			continue
		}
		if len(runs) > 0 {
			return runs, nil
		}
	}
	if len(errs) == len(m.sources) {
		return nil, errors.Join(errs...)
	}
	return nil, nil
}

// ResumeRun hands journalled runs to the first source that can resume
// them (only Taskcluster runs are journalled).
func (m *MultiSource) ResumeRun(e JournalEntry) Run {
	for _, s := range m.sources {
		if r, ok := s.(resumer); ok {
			return r.ResumeRun(e)
		}
	}
	return nil
}
