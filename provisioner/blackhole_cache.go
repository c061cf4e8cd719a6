package provisioner

// The detector's copy of each pool's recent runs. A pass reads only the
// reports received since the previous one (and a margin for transactions
// that committed late or clocks that differ between replicas), so that
// judging after every report does not read the whole window again.

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// receivedMargin is how far before the last read the next read starts:
// reports committed that much later than they were stamped, or stamped by
// a replica whose clock is that much behind, are still seen.
const receivedMargin = 2 * time.Minute

// runCache holds, per pool, the runs finished within its window.
type runCache struct {
	mu    sync.Mutex
	pools map[string]*poolRuns
}

type poolRuns struct {
	runs     []RunRecord // ordered by finish, then id
	ids      map[int64]bool
	readFrom time.Time // the next read takes reports received since
}

// window returns pool's runs finished since from, reading what is new.
// The slice is the cache's: the caller must not change it.
func (c *runCache) window(ctx context.Context, st Store, poolID string, from, now time.Time) ([]RunRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pools == nil {
		c.pools = map[string]*poolRuns{}
	}
	p := c.pools[poolID]
	if p == nil {
		p = &poolRuns{ids: map[int64]bool{}}
		c.pools[poolID] = p
	}
	fresh, err := st.RunReports(ctx, poolID, from, p.readFrom)
	if err != nil {
		return nil, err
	}
	p.readFrom = now.Add(-receivedMargin)
	// Forget what left the window, add what is new.
	keep := p.runs[:0]
	for _, r := range p.runs {
		if r.Finished.Before(from) {
			delete(p.ids, r.ID)
			continue
		}
		keep = append(keep, r)
	}
	p.runs = keep
	added := false
	for _, r := range fresh {
		// A canary is a probe of a quarantined machine, not the pool's
		// work: it is judged by blackhole_canary.go alone.
		if r.Kind == client.KindCanary {
			continue
		}
		if !p.ids[r.ID] {
			p.ids[r.ID] = true
			p.runs = append(p.runs, r)
			added = true
		}
	}
	if added {
		slices.SortStableFunc(p.runs, func(a, b RunRecord) int {
			if c := a.Finished.Compare(b.Finished); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
	}
	return p.runs, nil
}
