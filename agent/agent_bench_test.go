//go:build unix

package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// percentile is the p-th percentile (0-100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func reportLatency(b *testing.B, prefix string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(percentile(d, 50).Microseconds())/1000, prefix+"-p50-ms")
	b.ReportMetric(float64(percentile(d, 99).Microseconds())/1000, prefix+"-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// readStamp waits for a script to write `date +%s%N` into path.
func readStamp(b *testing.B, path string) time.Time {
	var ns int64
	waitFor(b, "timestamp in "+path, func() bool {
		raw, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(raw), "\n") {
			return false
		}
		ns, err = strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		return err == nil
	})
	return time.Unix(0, ns)
}

// BenchmarkCreateToCommandStart measures createTask → the task's command
// running, on an idle agent (one waiting in a claimWork long poll).
func BenchmarkCreateToCommandStart(b *testing.B) {
	e := newEnv(b, devqueue.Config{PollWait: 20 * time.Second})
	e.startAgent(e.config())
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		stamp := filepath.Join(e.dir, fmt.Sprintf("start-%d", i))
		// Let the agent settle into its long poll before creating.
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		id := e.createTask(shPayload("date +%s%N > "+stamp, 60))
		started := readStamp(b, stamp)
		lat = append(lat, started.Sub(t0))
		e.waitRun(id, 0)
	}
	reportLatency(b, "start", lat)
}

// BenchmarkCancelToTreeGone measures cancelTask → every process of the
// task gone, with the Pulse cancellation watcher.
func BenchmarkCancelToTreeGone(b *testing.B) {
	e := newEnv(b, devqueue.Config{})
	cfg := e.config()
	prov, wt, _ := strings.Cut(e.taskQueueID, "/")
	w := NewPulseCancelWatcher(e.stack.Bus, "queue/bench/agent-"+e.workerID, prov, wt, e.workerGroup, e.workerID, nil)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() { _ = w.Run(ctx) }()
	<-w.Ready()
	cfg.Cancel = w
	e.startAgent(cfg)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		pidFile := filepath.Join(e.dir, fmt.Sprintf("pid-%d", i))
		id := e.createTask(shPayload(fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile), 600))
		pid := readPid(b, pidFile)
		t0 := time.Now()
		if _, err := e.root.CancelTask(id); err != nil {
			b.Fatal(err)
		}
		for alive(pid) {
			if time.Since(t0) > testDeadline {
				b.Fatal("task process survived the cancel")
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
		waitFor(b, "run forgotten", func() bool {
			entries, _ := cfg.Journal.Entries()
			return len(entries) == 0
		})
	}
	reportLatency(b, "cancel", lat)
}

// BenchmarkNoopTasks measures throughput of no-op tasks on one agent with
// capacity 1, and the agent's overhead per task beyond running the command.
func BenchmarkNoopTasks(b *testing.B) {
	e := newEnv(b, devqueue.Config{})
	// The command's own cost, to subtract from the per-task time.
	const probes = 50
	t0 := time.Now()
	for range probes {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	command := time.Since(t0) / probes

	n := max(b.N, 20)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.createTask(map[string]any{"command": [][]string{{"/bin/true"}}, "maxRunTime": 60})
	}
	b.ResetTimer()
	start := time.Now()
	e.startAgent(e.config())
	for _, id := range ids {
		e.waitRun(id, 0)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	per := elapsed / time.Duration(n)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64((per-command).Microseconds())/1000, "overhead-ms/task")
	b.ReportMetric(float64(command.Microseconds())/1000, "command-ms")
	b.ReportMetric(0, "ns/op")
}
