package provisioner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
)

// fleetMachines is how many machines the assigner benchmarks use: 10 000,
// or LABRUNNER_BENCH_FLEET (the benchmark comparison's quick mode runs
// them small, to check they still run).
func fleetMachines() int {
	if n, err := strconv.Atoi(os.Getenv("LABRUNNER_BENCH_FLEET")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// benchFleet is 10 000 machines over 200 pools: half Windows, half macOS,
// pools constrained by OS (and some by model), random priorities, machines
// spread over pools, most idle, demand random.
func benchFleet(nMachines, nPools int) planInput {
	rng := rand.New(rand.NewPCG(1, 2))
	now := planNow
	var pools []client.Pool
	for i := range nPools {
		os := "windows"
		if i%2 == 1 {
			os = "darwin"
		}
		p := poolOf(fmt.Sprintf("pool-%03d", i), rng.IntN(3), 20+rng.IntN(80), rng.IntN(5), os)
		if i%10 == 0 {
			p.Spec.Constraints.Model = []string{"m1", "m2"}
		}
		if i%7 == 0 {
			p.Spec.Constraints.OSVersion = `1[0-9]\..*`
		}
		pools = append(pools, p)
	}
	pending := map[string]int64{}
	for _, p := range pools {
		pending[p.PoolID] = int64(rng.IntN(60))
	}
	var machines []*MachineRecord
	for i := range nMachines {
		pi := rng.IntN(nPools)
		os := "windows"
		if pi%2 == 1 {
			os = "darwin"
		}
		state := client.StateIdle
		if rng.IntN(3) == 0 {
			state = client.StateBusy
		}
		m := mach(fmt.Sprintf("m%05d", i), pools[pi].PoolID, os, state)
		m.Facts.Model = fmt.Sprintf("m%d", rng.IntN(3))
		m.Facts.OSVersion = fmt.Sprintf("%d.%d", 9+rng.IntN(6), rng.IntN(5))
		machines = append(machines, m)
	}
	return planInput{pools: pools, machines: machines, pending: pending, now: now, moveInterval: 15 * time.Minute, offlineAfter: 5 * time.Minute}
}

// BenchmarkAssignPlan10kMachines200Pools times the assigner's decision for
// a whole fleet (target < 1 s).
func BenchmarkAssignPlan10kMachines200Pools(b *testing.B) {
	in := benchFleet(fleetMachines(), 200)
	var moves []move
	for b.Loop() {
		moves, _ = plan(in)
	}
	b.ReportMetric(float64(len(moves)), "moves")
}

// BenchmarkAssignPass10kMachinesSQLite times a full pass through the store
// (read pools and machines, decide, write every move) for 10 000
// unassigned machines over 200 pools.
func BenchmarkAssignPass10kMachinesSQLite(b *testing.B) {
	in := benchFleet(fleetMachines(), 200)
	demand := &fixedDemand{}
	for id, n := range in.pending {
		demand.set(id, n)
	}
	clock := newFakeClock()
	srv, err := New(Config{DB: filepath.Join(b.TempDir(), "bench.db"), Demand: demand, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	for _, p := range in.pools {
		if err := srv.store.PutPool(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	st := srv.store.(*sqlStore)
	insert := func() {
		if _, err := st.db.Exec(`DELETE FROM machines`); err != nil {
			b.Fatal(err)
		}
		if _, err := st.db.Exec(`DELETE FROM directives`); err != nil {
			b.Fatal(err)
		}
		tx, _ := st.db.Begin()
		hb := ms(clock.Now())
		for i, m := range in.machines {
			_, err := tx.Exec(`INSERT INTO machines (machine_id, token_hash, pool_id, facts, state, registered, last_heartbeat) VALUES (?, ?, '', ?, 'idle', ?, ?)`,
				m.MachineID, hashToken(fmt.Sprint(i)), jsonText(m.Facts), hb, hb)
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	var assigned int
	for b.Loop() {
		b.StopTimer()
		insert()
		b.StartTimer()
		if err := srv.AssignOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var n int
		_ = st.db.QueryRow(`SELECT COUNT(*) FROM machines WHERE pool_id <> ''`).Scan(&n)
		assigned = n
		b.StartTimer()
	}
	b.ReportMetric(float64(assigned), "assigned")
}

// benchHeartbeats posts heartbeats from concurrent clients over loopback
// HTTP and reports throughput and p99 latency.
func benchHeartbeats(b *testing.B, dbURL string) {
	srv, err := New(Config{DB: dbURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ctx := context.Background()
	const nMachines = 500
	tokens := make([]string, nMachines)
	for i := range nMachines {
		tokens[i] = fmt.Sprintf("%sbench-%04d", machineTokenPrefix, i)
		m := &MachineRecord{Machine: client.Machine{MachineID: fmt.Sprintf("m%04d", i), PoolID: "p", Facts: winFacts("h"), Registered: time.Now()}, TokenHash: hashToken(tokens[i])}
		if err := srv.store.InsertMachine(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	body := []byte(`{"state":"busy","currentTask":{"taskId":"T","runId":0},"health":[{"name":"disk","ok":true}],"counters":{"tasksRun":12}}`)
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			i := int(next.Add(1)) % nMachines
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/machines/m%04d/heartbeat", hs.URL, i), bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Errorf("heartbeat status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "heartbeats/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkHeartbeatsSQLite: target >= 5 000/s with p99 < 20 ms.
func BenchmarkHeartbeatsSQLite(b *testing.B) {
	benchHeartbeats(b, filepath.Join(b.TempDir(), "hb.db"))
}

// BenchmarkHeartbeatsPostgres runs the same load on PostgreSQL over
// loopback.
func BenchmarkHeartbeatsPostgres(b *testing.B) {
	benchHeartbeats(b, testsvc.Postgres(b))
}
