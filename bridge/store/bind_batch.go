package store

// On MySQL, BindBuildRequest calls made while another is being written
// wait and are written together, as one UPDATE, for the same reason
// schedulerdb batches injections: each statement costs MySQL far more than
// the row it changes.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	maxBindBatch   = 100
	maxBindFlights = 2
	bindTimeout    = time.Minute
)

// bindCall is one BindBuildRequest waiting for its batch.
type bindCall struct {
	taskID string
	runID  int
	brid   int64
	err    error
	done   chan struct{}
}

// bindQueue gathers the calls waiting for a batch.
type bindQueue struct {
	mu       sync.Mutex
	pending  []*bindCall
	inFlight int
}

// bindBatched queues call and waits for the batch that writes it.
func (s *Store) bindBatched(ctx context.Context, call *bindCall) error {
	call.done = make(chan struct{})
	q := &s.binds
	q.mu.Lock()
	q.pending = append(q.pending, call)
	if q.inFlight < maxBindFlights {
		q.inFlight++
		go s.runBinds()
	}
	q.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runBinds writes batches until no call is waiting.
func (s *Store) runBinds() {
	q := &s.binds
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.inFlight--
			q.mu.Unlock()
			return
		}
		n := min(len(q.pending), maxBindBatch)
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()
		s.writeBinds(batch)
	}
}

// writeBinds sets the build request of every row of batch that has none in
// one UPDATE. When fewer rows change than there are calls, each call is
// checked on its own, which tells bound-already, missing and conflict apart.
func (s *Store) writeBinds(batch []*bindCall) {
	ctx, cancel := context.WithTimeout(context.Background(), bindTimeout)
	defer cancel()
	var n int64
	var err error
	if len(batch) > 1 {
		cases := make([]string, len(batch))
		where := make([]string, len(batch))
		var args, whereArgs []any
		for i, c := range batch {
			cases[i], where[i] = "WHEN taskId = ? AND runId = ? THEN ?", "(taskId = ? AND runId = ?)"
			args = append(args, c.taskID, c.runID, c.brid)
			whereArgs = append(whereArgs, c.taskID, c.runID)
		}
		n, err = s.exec(ctx, "UPDATE tasks SET buildrequestId = CASE "+strings.Join(cases, " ")+
			" END WHERE buildrequestId IS NULL AND ("+strings.Join(where, " OR ")+")", append(args, whereArgs...)...)
	}
	for _, c := range batch {
		if len(batch) == 1 || err != nil || n != int64(len(batch)) {
			c.err = s.bindOne(ctx, c.taskID, c.runID, c.brid)
		}
		close(c.done)
	}
}
