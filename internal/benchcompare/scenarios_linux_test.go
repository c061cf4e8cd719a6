//go:build linux

package benchcompare

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// shPayload is the payload both workers get: one shell command, no
// features, the same for labrunner and generic-worker.
func shPayload(script string) map[string]any {
	return map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 120}
}

// createTask creates a task with payload on workerType's queue; mutate,
// if given, changes the definition first (dependencies, for instance).
func (s *stack) createTask(t testing.TB, workerType string, payload map[string]any, mutate ...func(*tcqueue.TaskDefinitionRequest)) string {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	id := slugid.Nice()
	def := &tcqueue.TaskDefinitionRequest{
		TaskQueueID: provisionerID + "/" + workerType,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload: raw,
		Metadata: tcqueue.TaskMetadata{
			Name: "benchcompare", Description: "labrunner / generic-worker comparison", Owner: "bench@example.com",
			Source: "https://example.com/benchcompare",
		},
	}
	for _, m := range mutate {
		m(def)
	}
	_, err = s.queue.CreateTask(id, def)
	if err != nil {
		t.Fatalf("createTask on %s: %v", workerType, err)
	}
	return id
}

// waitResolved polls the task's status until its first run is resolved,
// and fails unless it completed.
func (s *stack) waitResolved(t testing.TB, id string, p *proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.queue.Status(id)
		if err == nil && len(st.Status.Runs) > 0 {
			run := st.Status.Runs[0]
			if run.State != "pending" && run.State != "running" {
				if run.State != "completed" {
					t.Fatalf("task %s resolved %s/%s, want completed; worker log:\n%s", id, run.State, run.ReasonResolved, p.tail())
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not resolved in %s; worker log:\n%s", id, timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readNumber waits for a task's command to write a decimal number and a
// newline into path.
func readNumber(t testing.TB, path string, p *proc, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(raw), "\n") {
			n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
			if err != nil {
				t.Fatalf("number in %s: %v", path, err)
			}
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing in %s after %s; worker log:\n%s", path, timeout, p.tail())
		}
		time.Sleep(time.Millisecond)
	}
}

// readStamp waits for a task's command to write `date +%s%N` into path.
func readStamp(t testing.TB, path string, p *proc, timeout time.Duration) time.Time {
	t.Helper()
	return time.Unix(0, readNumber(t, path, p, timeout))
}

// idleFootprint samples the worker's process tree every 0.5 s over window,
// after startup: peak RSS in MB and CPU in % of one core.
func idleFootprint(p *proc, startup, window time.Duration) (rssMB, cpuPct float64) {
	pid := p.cmd.Process.Pid
	time.Sleep(startup)
	cpu0, t0 := treeCPU(pid), time.Now()
	var peak int64
	for time.Since(t0) < window {
		peak = max(peak, treeRSSKB(pid))
		time.Sleep(500 * time.Millisecond)
	}
	cpu := (treeCPU(pid) - cpu0).Seconds()
	return float64(peak) / 1024, 100 * cpu / time.Since(t0).Seconds()
}

// startLatencies creates n tasks one after the other on an idle worker
// (back in its claimWork long poll: settle after the previous task) and
// returns, in ms, each command's `date +%s%N` minus the time just before
// createTask.
func startLatencies(t testing.TB, s *stack, w worker, p *proc, workerType, dir string, n int) []float64 {
	t.Helper()
	var out []float64
	for i := range n {
		time.Sleep(w.settle)
		stamp := filepath.Join(dir, fmt.Sprintf("start-%d", i))
		t0 := time.Now()
		id := s.createTask(t, workerType, shPayload("date +%s%N > "+stamp))
		started := readStamp(t, stamp, p, 60*time.Second)
		out = append(out, float64(started.Sub(t0).Microseconds())/1000)
		s.waitResolved(t, id, p, 60*time.Second)
	}
	return out
}

// commandCost is what running /bin/true directly costs here.
func commandCost(t testing.TB) time.Duration {
	t.Helper()
	const probes = 20
	t0 := time.Now()
	for range probes {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(t0) / probes
}

// noopThroughput queues n `/bin/true` tasks, then starts a fresh worker
// with the given capacity, and times from the first task resolved to the
// last: tasks per second over the n-1 after the first (so the worker's
// start-up is not counted), and the time per task in ms.
func noopThroughput(t testing.TB, s *stack, b binaries, w worker, dir, workerType string, n, capacity int) (perSec, msPerTask float64) {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.createTask(t, workerType, map[string]any{"command": [][]string{{"/bin/true"}}, "maxRunTime": 60})
	}
	p := w.start(t, s, b, dir, workerType, startOpts{capacity: capacity})
	defer p.stop()
	timeout := 60*time.Second + time.Duration(n)*10*time.Second
	// The queue hands tasks out in creation order; with capacity > 1 any of
	// the first few may finish first, so take the first that resolves.
	s.waitAnyResolved(t, ids[:capacity], p, timeout)
	t0 := time.Now()
	for _, id := range ids {
		s.waitResolved(t, id, p, timeout)
	}
	elapsed := time.Since(t0)
	per := elapsed / time.Duration(n-1)
	return float64(n-1) / elapsed.Seconds(), float64(per.Microseconds()) / 1000
}

// waitAnyResolved waits until one of ids has a resolved run.
func (s *stack) waitAnyResolved(t testing.TB, ids []string, p *proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, id := range ids {
			st, err := s.queue.Status(id)
			if err == nil && len(st.Status.Runs) > 0 {
				if r := st.Status.Runs[0].State; r != "pending" && r != "running" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("none of the first %d tasks resolved in %s; worker log:\n%s", len(ids), timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive says whether pid is a live (not zombie) process.
func alive(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	rest := string(raw)[strings.LastIndexByte(string(raw), ')')+1:]
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// cancelToGone runs a task whose shell starts `sleep 300` in the
// background and waits, calls cancelTask once the sleep's pid is known,
// and polls (1 ms) until that process is gone: the time in ms, and false
// if it outlived giveUp (then the harness kills it, and the value is
// giveUp). The worker is then left settle to resolve and clean up.
// beforeCancel, if not nil, runs while the task runs, before the cancel.
func cancelToGone(t testing.TB, s *stack, w worker, p *proc, workerType, dir string, i int, giveUp time.Duration, beforeCancel func()) (ms float64, gone bool) {
	t.Helper()
	pidFile := filepath.Join(dir, fmt.Sprintf("pid-%d", i))
	id := s.createTask(t, workerType, shPayload(fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile)))
	pid := int(readNumber(t, pidFile, p, 60*time.Second))
	if beforeCancel != nil {
		beforeCancel()
	}
	t0 := time.Now()
	if _, err := s.queue.CancelTask(id); err != nil {
		t.Fatalf("cancelTask %s: %v", id, err)
	}
	for alive(pid) {
		if time.Since(t0) > giveUp {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the task's own sleep
			time.Sleep(w.settle)
			return float64(giveUp.Milliseconds()), false
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(t0)
	time.Sleep(w.settle)
	return float64(elapsed.Microseconds()) / 1000, true
}
