package bridge

// Benchmarks (docs/bridge.md records the numbers):
//
//	BenchmarkPendingToBuildRequest  task-pending handled -> bound build
//	                                request, on MariaDB: handlers=1 (one
//	                                delivery at a time, as BBB's
//	                                single-threaded listener), handlers=32
//	BenchmarkReflectorReclaim       one reflector pass over running tasks
//	                                that are all due; LABRUNNER_BENCH_RECLAIM
//	                                sets how many (default 2000; 10000 for
//	                                the target in docs/bridge.md)

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

var realSetup = setup{"mariadb-rabbitmq", true}

func BenchmarkPendingToBuildRequest(b *testing.B) {
	for _, handlers := range []int{1, 32} {
		b.Run("handlers="+strconv.Itoa(handlers), func(b *testing.B) { benchPendingToBuildRequest(b, handlers) })
	}
}

// benchPendingToBuildRequest hands b.N task-pending messages to the bridge
// with the given number of deliveries in flight.
func benchPendingToBuildRequest(b *testing.B, handlers int) {
	e := newEnv(b, realSetup, envOpts{})
	// The queue runs in a process of its own, as it does in production, so
	// that the CPU figures below are the bridge's and MariaDB's alone.
	rootURL, creds, queuePid := queueProcess(b)
	e.cfg.Taskcluster = TaskclusterConfig{RootURL: rootURL, ClientID: creds.ClientID, AccessToken: creds.AccessToken}
	e.q = tcqueue.New(&creds, rootURL)
	br := e.newBridge()
	defer func() { _ = br.Close() }()
	e.sdb, e.st = br.SchedulerDB(), br.Store()
	bodies := make([][]byte, b.N)
	for i := range b.N {
		id := e.createTask(payload(goodBuilder), nil)
		st := e.status(id)
		bodies[i], _ = json.Marshal(map[string]any{"version": 1, "status": st, "runId": 0})
	}
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	self0, server0 := cpuUsed()
	queue0 := processCPU(queuePid)
	start := time.Now()
	for range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				d := pulse.NewDelivery("x", "y", bodies[i], false, nil, func() error { return nil }, func(bool) error { return nil })
				if err := br.handlePending(ctx, d); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	self1, server1 := cpuUsed()
	queue1 := processCPU(queuePid)
	b.StopTimer()
	rows, err := e.st.List(ctx)
	if err != nil || len(rows) != b.N {
		b.Fatalf("%d rows after %d task-pending, %v", len(rows), b.N, err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	// What a request costs in CPU: on a busy machine requests/s says more
	// about the neighbours. bridge+db is what the target's two cores run.
	perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	if bridgeCPU, dbCPU := self1-self0, server1-server0; bridgeCPU > 0 && dbCPU > 0 {
		b.ReportMetric(perReq(bridgeCPU), "bridge-cpu-ms/req")
		b.ReportMetric(perReq(dbCPU), "db-cpu-ms/req")
		b.ReportMetric(perReq(queue1-queue0), "queue-cpu-ms/req")
		b.ReportMetric(2000/perReq(bridgeCPU+dbCPU), "req/s-per-2-cores")
	}
}

func BenchmarkReflectorReclaim(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("LABRUNNER_BENCH_RECLAIM")); err == nil && v > 0 {
		n = v
	}
	e := newEnv(b, realSetup, envOpts{mutate: func(c *Config) { c.Reflector.Concurrency = 64 }})
	br := e.newBridge()
	defer func() { _ = br.Close() }()
	e.sdb, e.st = br.SchedulerDB(), br.Store()
	ctx := context.Background()
	// n running tasks claimed by the bridge, rows due for a reclaim.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := e.createTask(payload(goodBuilder), nil)
			c, err := e.q.ClaimTask(id, "0", &tcqueue.TaskClaimRequest{WorkerGroup: "buildbot-bridge", WorkerID: "buildbot-bridge"})
			if err != nil {
				b.Error(err)
				return
			}
			if _, _, err := e.st.Create(ctx, store.NewTask{TaskID: id, RunID: 0, Created: time.Now()}); err != nil {
				b.Error(err)
				return
			}
			if _, err := e.st.SetBuildRequestID(ctx, id, 0, int64(i+1)); err != nil {
				b.Error(err)
				return
			}
			_ = c
		}()
	}
	wg.Wait()
	b.ResetTimer()
	var reclaimed int
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		rows, _ := e.st.List(ctx)
		for _, r := range rows {
			_ = e.st.UpdateTakenUntil(ctx, *r.BuildRequestID, time.Now().Add(time.Minute))
		}
		b.StartTimer()
		start := time.Now()
		st, err := br.ReflectOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		reclaimed += st.Reclaimed
	}
	if reclaimed != n*b.N {
		b.Fatalf("%d reclaims, want %d", reclaimed, n*b.N)
	}
	b.ReportMetric(float64(reclaimed)/elapsed.Seconds(), "reclaims/s")
	b.ReportMetric(float64(n)/(elapsed.Seconds()/float64(b.N)), "tasks/pass-s")
}
