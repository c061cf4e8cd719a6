package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/bridge"
)

// Builders of the graph tests; names starting "unserved" are not claimed
// by the agent.
func graphBuilders(dir string) map[string]bridge.BuilderDef {
	sh := func(script string) []bridge.StepDef {
		return []bridge.StepDef{{Name: "run", Command: []string{"sh", "-c", script}}}
	}
	return map[string]bridge.BuilderDef{
		"linux-build": {Steps: []bridge.StepDef{
			{Name: "compile", Command: []string{"sh", "-c", `echo "building %(prop:product)s as $PRODUCT"`}},
			{Name: "props", Command: []string{"sh", "-c", `printf '{"got_revision":"abc123"}' > "$TASK_WORKDIR/` + agent.PropertiesFileName + `"`}},
		}, Env: map[string]string{"PRODUCT": "%(prop:product)s"}, MaxRunTime: 60},
		"linux-fail":  {Steps: sh(`echo failing; exit 3`), MaxRunTime: 60},
		"linux-retry": {Steps: sh(fmt.Sprintf(`if [ -e %q ]; then echo second attempt; else touch %q; exit 4; fi`, filepath.Join(dir, "retried"), filepath.Join(dir, "retried"))), MaxRunTime: 60},
		// linux-sleep ignores the interrupt (and so does its child, which
		// inherits the ignored signals): only the kill ends it.
		"linux-sleep": {Steps: sh(fmt.Sprintf(`trap '' INT TERM; sleep 300 & echo $! > %q; echo $$ > %q; wait`, filepath.Join(dir, "child.pid"), filepath.Join(dir, "shell.pid"))), MaxRunTime: 600},
		"unserved":    {Steps: sh(`echo never`), MaxRunTime: 60},
	}
}

var graphResults = map[string]agent.BuilderResults{"linux-retry": {Retry: []int{4}}}

// A (bridged) then B (native, depending on A): B waits for A, A completes
// through the bridge with the log and the properties its steps set, then B
// runs natively on the same agent.
func TestMixedGraphCompletes(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newGraphEnv(t, s, graphBuilders, graphResults)
		a := e.createBridged("linux-build")
		b := e.createNative(a)
		if st := e.status(b); st.State != "unscheduled" {
			t.Fatalf("B is %s before A resolved, want unscheduled", st.State)
		}
		stA := e.waitState(a, "completed")
		stB := e.waitState(b, "completed")
		if len(stA.Runs) != 1 || len(stB.Runs) != 1 {
			t.Errorf("runs: A %d, B %d; want one each", len(stA.Runs), len(stB.Runs))
		}
		if stB.Runs[0].WorkerID != "lab-1" {
			t.Errorf("B ran on %q, want lab-1", stB.Runs[0].WorkerID)
		}
		if time.Time(stB.Runs[0].Scheduled).Before(time.Time(stA.Runs[0].Resolved)) {
			t.Errorf("B scheduled at %v, before A resolved at %v", stB.Runs[0].Scheduled, stA.Runs[0].Resolved)
		}

		var props map[string][2]any
		if err := json.Unmarshal(e.artifact(a, "public/properties.json"), &props); err != nil {
			t.Fatalf("properties.json: %v", err)
		}
		if got := props["got_revision"][0]; got != "abc123" {
			t.Errorf("properties.json got_revision = %v, want abc123 (from %s)", got, agent.PropertiesFileName)
		}
		if got := props["product"][0]; got != "firefox" {
			t.Errorf("properties.json product = %v, want firefox", got)
		}
		if got := props["buildername"][0]; got != "linux-build" {
			t.Errorf("properties.json buildername = %v", got)
		}
		log := gunzip(t, e.artifact(a, "public/logs/live_backing.log.gz"))
		if !strings.Contains(log, "building firefox as firefox") {
			t.Errorf("A's log lacks the step's output:\n%s", log)
		}
		var result map[string]any
		if err := json.Unmarshal(e.artifact(a, "public/buildbot-result.json"), &result); err != nil || result["result"] != "SUCCESS" {
			t.Errorf("buildbot-result.json = %v (%v), want SUCCESS", result, err)
		}
		if brs := e.buildRequests(a); len(brs) != 1 || brs[0] != [2]int{1, 0} {
			t.Errorf("build requests of A = %v, want one complete SUCCESS", brs)
		}
		native := string(e.artifact(b, "public/logs/live_backing.log"))
		if !strings.Contains(native, "native task ran") {
			t.Errorf("B's log lacks its output:\n%s", native)
		}
	})
}

// A fails (exit 3 → FAILURE → failed): B is never scheduled.
func TestMixedGraphFailureBlocksDependent(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newGraphEnv(t, s, graphBuilders, graphResults)
		a := e.createBridged("linux-fail")
		b := e.createNative(a)
		e.waitState(a, "failed")
		if brs := e.buildRequests(a); len(brs) != 1 || brs[0] != [2]int{1, 2} {
			t.Errorf("build requests of A = %v, want one complete FAILURE (2)", brs)
		}
		// A native task created after B is run by the same agent: once it is
		// done, the agent has had its chance to claim B, which must still wait.
		probe := e.createNative()
		e.waitState(probe, "completed")
		if st := e.status(b); st.State != "unscheduled" || len(st.Runs) != 0 {
			t.Errorf("B is %s with %d runs after A failed, want unscheduled with none", st.State, len(st.Runs))
		}
		log := gunzip(t, e.artifact(a, "public/logs/live_backing.log.gz"))
		if !strings.Contains(log, "failing") || !strings.Contains(log, "exit code 3") {
			t.Errorf("A's log lacks the failure:\n%s", log)
		}
	})
}

// A's step exits with the builder's retry code: RETRY re-queues the same
// build request, the agent runs it again, and B then runs.
func TestMixedGraphRetry(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newGraphEnv(t, s, graphBuilders, graphResults)
		a := e.createBridged("linux-retry")
		b := e.createNative(a)
		st := e.waitState(a, "completed")
		if len(st.Runs) != 2 || st.Runs[0].State != "exception" || st.Runs[1].State != "completed" {
			t.Errorf("A's runs = %+v, want exception then completed", st.Runs)
		}
		if brs := e.buildRequests(a); len(brs) != 1 || brs[0] != [2]int{1, 0} {
			t.Errorf("build requests of A = %v, want the one request, complete SUCCESS", brs)
		}
		e.waitState(b, "completed")
		log := gunzip(t, e.artifact(a, "public/logs/live_backing.log.gz"))
		if !strings.Contains(log, "second attempt") {
			t.Errorf("A's latest log is not the second attempt's:\n%s", log)
		}
	})
}

// A is cancelled in Taskcluster while its build, which ignores the
// interrupt, runs: the agent hears it from the heartbeat and kills the
// process tree after the build's kill grace, within 2 s; it finishes
// CANCELLED; the request is complete CANCELLED, A is exception/canceled
// and B never runs.
func TestMixedGraphCancelledInTaskcluster(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newGraphEnv(t, s, graphBuilders, graphResults)
		a := e.createBridged("linux-sleep")
		b := e.createNative(a)
		shellPid := waitPid(t, filepath.Join(e.dir, "shell.pid"))
		childPid := waitPid(t, filepath.Join(e.dir, "child.pid"))
		if _, err := e.q.CancelTask(a); err != nil {
			t.Fatalf("cancelTask: %v", err)
		}
		// Measured from cancelTask's answer: the queue then holds the run
		// exception/canceled, which is what the bridge's heartbeat answer
		// reads, so from here the bridge says the build is cancelled. The
		// documented bound is one heartbeat interval + the build's kill
		// grace (docs/bridge.md); 1.5 s more absorbs -race on a loaded
		// 2-core machine. The agent's own grace (10 s) would overrun it.
		cancelled := time.Now()
		waitFor(t, "the build's process tree to be gone", func() bool { return !alive(shellPid) && !alive(childPid) })
		gone := time.Since(cancelled)
		if limit := agent.DefaultHeartbeatInterval + agent.DefaultBuildKillGrace + 1500*time.Millisecond; gone > limit {
			t.Errorf("the build's process tree was gone %s after the cancel, want within %s", gone, limit)
		}
		t.Logf("process tree gone %s after cancelTask", gone)
		st := e.waitState(a, "exception")
		if r := st.Runs[len(st.Runs)-1]; r.ReasonResolved != "canceled" {
			t.Errorf("A resolved %s, want canceled", r.ReasonResolved)
		}
		waitFor(t, "A's build request complete CANCELLED", func() bool {
			brs := e.buildRequests(a)
			return len(brs) == 1 && brs[0] == [2]int{1, 6}
		})
		probe := e.createNative()
		e.waitState(probe, "completed")
		if st := e.status(b); st.State != "unscheduled" {
			t.Errorf("B is %s after A was cancelled, want unscheduled", st.State)
		}
	})
}

// A's request is cancelled in Buildbot before any agent starts it: the
// reflector cancels the task, and B never runs.
func TestMixedGraphCancelledInBuildbot(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		e := newGraphEnv(t, s, graphBuilders, graphResults)
		a := e.createBridged("unserved")
		b := e.createNative(a)
		var brid int64
		waitFor(t, "A's build request", func() bool {
			row, err := e.bridge.Store().GetTask(context.Background(), a)
			if err != nil || row.BuildRequestID == nil {
				return false
			}
			brid = *row.BuildRequestID
			return true
		})
		if _, err := e.bridge.SchedulerDB().CancelRequest(context.Background(), brid); err != nil {
			t.Fatalf("cancel the request in Buildbot: %v", err)
		}
		stats, err := e.bridge.ReflectOnce(context.Background())
		if err != nil {
			t.Fatalf("reflector pass: %v", err)
		}
		if stats.Cancelled != 1 {
			t.Errorf("reflector cancelled %d tasks, want 1", stats.Cancelled)
		}
		st := e.waitState(a, "exception")
		if r := st.Runs[len(st.Runs)-1]; r.ReasonResolved != "canceled" {
			t.Errorf("A resolved %s, want canceled", r.ReasonResolved)
		}
		probe := e.createNative()
		e.waitState(probe, "completed")
		if st := e.status(b); st.State != "unscheduled" {
			t.Errorf("B is %s after A was cancelled in Buildbot, want unscheduled", st.State)
		}
	})
}

func waitPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, path, func() bool {
		raw, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
		return err == nil
	})
	return pid
}

// alive reports whether pid runs (and is not a zombie awaiting its parent).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat))
	return len(f) < 3 || f[2] != "Z"
}
