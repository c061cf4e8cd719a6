package devqueue

import (
	"context"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// BenchmarkCreateToClaim measures createTask followed by the claim of a
// worker already waiting in claimWork, through client-go over HTTP.
func BenchmarkCreateToClaim(b *testing.B) {
	h := start(b, func(c *Config) { c.PollWait = time.Minute })
	tq := newQueueID()
	claimed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		q := *h.q
		q.Context = ctx
		for ctx.Err() == nil {
			res, err := q.ClaimWork(tq, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "wg", WorkerID: "bench"})
			if err == nil && len(res.Tasks) == 1 {
				claimed <- struct{}{}
			}
		}
	}()
	d := h.def(tq)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.create(d)
		<-claimed
	}
}
