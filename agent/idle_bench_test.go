//go:build linux

package agent

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

// BenchmarkIdleAgent runs `runner run` against devstack with nothing to do
// and measures its resident memory and CPU from outside (/proc) over a
// window: 60 s, or LABRUNNER_BENCH_IDLE_WINDOW (a Go duration).
func BenchmarkIdleAgent(b *testing.B) {
	window := 60 * time.Second
	if v := os.Getenv("LABRUNNER_BENCH_IDLE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("LABRUNNER_BENCH_IDLE_WINDOW: %v", err)
		}
		window = d
	}
	// The real queue answers an empty claimWork after 20 s.
	e := newEnv(b, devqueue.Config{PollWait: 20 * time.Second})
	bin := filepath.Join(b.TempDir(), "runner")
	build := exec.Command("go", "build", "-o", bin, "github.com/labrunner/labrunner/cmd/runner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build runner: %v\n%s", err, out)
	}
	cfg, _ := json.Marshal(map[string]any{
		"rootURL":     e.stack.RootURL,
		"credentials": map[string]string{"clientId": e.stack.Credentials.ClientID, "accessToken": e.stack.Credentials.AccessToken},
		"taskQueueId": e.taskQueueID, "workerGroup": e.workerGroup, "workerId": e.workerID,
		"stateDir": filepath.Join(e.dir, "state"), "tasksDir": filepath.Join(e.dir, "tasks"),
		"livelog": map[string]string{"listen": "127.0.0.1:0", "publicURL": "http://127.0.0.1:1"},
	})
	cfgPath := filepath.Join(e.dir, "agent.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		// Let start-up (journal recovery, first poll) finish first.
		time.Sleep(2 * time.Second)
		cpu0, t0 := cpuTime(b, pid), time.Now()
		var maxRSS int64
		for time.Since(t0) < window {
			maxRSS = max(maxRSS, rssKB(b, pid))
			time.Sleep(500 * time.Millisecond)
		}
		cpu := (cpuTime(b, pid) - cpu0).Seconds()
		elapsed := time.Since(t0).Seconds()
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b.ReportMetric(float64(maxRSS)/1024, "rss-MB")
		b.ReportMetric(100*cpu/elapsed, "cpu-%")
		b.ReportMetric(0, "ns/op")
	}
}

// cpuTime is the process's CPU time so far: the sum of its threads'
// schedstat nanoseconds, as /proc/<pid>/stat's 10 ms ticks are too coarse
// for an idle process. Threads that exited meanwhile are not counted; the
// Go runtime keeps its threads.
func cpuTime(b *testing.B, pid int) time.Duration {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no threads for %d: %v", pid, err)
	}
	var total int64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(raw))[0], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		total += ns
	}
	return time.Duration(total)
}

// rssKB is the process's resident set size in KiB.
func rssKB(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
