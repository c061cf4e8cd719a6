// Package batch gathers calls made at the same time into batches, the way
// a database's group commit does: a call that arrives while a batch is
// being written waits for the next one, which takes every call waiting by
// then. A lone call is a batch of one, so a quiet system waits for nothing.
package batch

import (
	"slices"
	"sync"
)

// Queue hands waiting items to write, at most Max at a time, with at most
// Flights batches being written at once.
type Queue[T any] struct {
	// Max bounds the items of one batch (default 100).
	Max int
	// Flights bounds the batches written at once (default 2), so that one
	// batch waiting on a lock does not hold every caller up.
	Flights int
	// Write writes one batch and answers each of its items' callers.
	Write func(items []T)

	mu       sync.Mutex
	pending  []T
	inFlight int
}

// Add queues item; Write sees it in a later batch. The caller waits for
// Write's answer through the item itself (a channel in it, for example).
func (q *Queue[T]) Add(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, item)
	flights := q.Flights
	if flights <= 0 {
		flights = 2
	}
	if q.inFlight < flights {
		q.inFlight++
		go q.run()
	}
}

// run writes batches until nothing waits.
func (q *Queue[T]) run() {
	limit := q.Max
	if limit <= 0 {
		limit = 100
	}
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.inFlight--
			q.mu.Unlock()
			return
		}
		n := min(len(q.pending), limit)
		items := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()
		q.Write(items)
	}
}
