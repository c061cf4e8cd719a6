package batch

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type call struct {
	n    int
	done chan int // the size of the batch that carried the call
}

// Every item is written exactly once, no batch is larger than Max, no more
// than Flights batches run at once, and calls that pile up during a write
// share the next batch.
func TestQueueBatchesConcurrentCalls(t *testing.T) {
	var running, most atomic.Int32
	var mu sync.Mutex
	seen := map[int]int{}
	var batches atomic.Int32
	q := &Queue[*call]{Max: 10, Flights: 2, Write: func(items []*call) {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if r <= m || most.CompareAndSwap(m, r) {
				break
			}
		}
		if len(items) > 10 {
			t.Errorf("batch of %d items, Max is 10", len(items))
		}
		batches.Add(1)
		time.Sleep(5 * time.Millisecond) // a write takes a while: others pile up
		mu.Lock()
		for _, c := range items {
			seen[c.n]++
		}
		mu.Unlock()
		for _, c := range items {
			c.done <- len(items)
		}
	}}
	const n = 200
	var wg sync.WaitGroup
	largest := atomic.Int32{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &call{n: i, done: make(chan int, 1)}
			q.Add(c)
			if size := <-c.done; int32(size) > largest.Load() {
				largest.Store(int32(size))
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("item %d written %d times, want once", i, seen[i])
		}
	}
	if most.Load() > 2 {
		t.Errorf("%d batches ran at once, Flights is 2", most.Load())
	}
	if batches.Load() >= n || largest.Load() < 2 {
		t.Errorf("%d batches for %d items (largest %d): calls did not share batches", batches.Load(), n, largest.Load())
	}
	// Once idle, a lone call is written on its own, without waiting.
	c := &call{n: -1, done: make(chan int, 1)}
	q.Add(c)
	if size := <-c.done; size != 1 {
		t.Errorf("a lone call went in a batch of %d", size)
	}
}
