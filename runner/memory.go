package runner

// The runner's own memory. A lab machine's runner is idle most of its
// life (one claimWork long poll at a time, the checks once a minute) with
// about 1 MB of live heap, and what it keeps resident is taken from the
// tasks. Go's default (GOGC=100) lets the heap grow to 4 MB before
// collecting and returns freed pages to the OS only gradually, so an idle
// runner held 3–4 MB of garbage and free pages (docs/benchmarks.md, idle
// RSS). While idle the runner therefore collects sooner (GOGC 25: with a
// heap this small a collection costs well under a millisecond) and hands
// free pages back at once; while runs go on it uses Go's default, as
// collecting that often cost a fifth of the no-op task throughput.
//
//	start ──▶ idle settings ──claim──▶ busy (GOGC 100)
//	              ▲                         │ last run ends
//	              └── 2 s without a run ◀───┘   (free pages returned)

import (
	"os"
	"runtime/debug"
	"time"
)

// GC percents for an idle and a busy runner; GOGC in the environment
// overrides both (the runner then leaves the collector alone).
const (
	idleGCPercent = 25
	busyGCPercent = 100
)

// idleRelease is how long the machine must stay without a run before the
// idle settings return: long enough that a busy machine, which claims its
// next task at once, does not switch between tasks.
const idleRelease = 2 * time.Second

// memoryTuning is the collector's state by idleness; guarded by the
// Runner's mu.
type memoryTuning struct {
	tuned bool        // GOGC is not set: the runner sets the GC percent
	idle  bool        // the idle settings are in force
	timer *time.Timer // pending return to the idle settings
}

// tuneMemory puts the idle settings in force at start, unless the
// operator set GOGC.
func (r *Runner) tuneMemory() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, set := os.LookupEnv("GOGC")
	r.mem.tuned = !set
	r.memoryIdle()
}

// releaseMemory collects and returns every free page to the OS at once,
// after the boot (configuration, checks and their garbage). It runs in
// its own goroutine: a full collection with the runner's small heap takes
// about a millisecond.
func releaseMemory() {
	go debug.FreeOSMemory()
}

// memoryIdle puts the idle settings in force. Caller holds r.mu.
func (r *Runner) memoryIdle() {
	r.mem.idle = true
	if r.mem.tuned {
		debug.SetGCPercent(idleGCPercent)
	}
}

// memoryBusy is called when runs were claimed: Go's default collector
// settings while they run. Caller holds r.mu.
func (r *Runner) memoryBusy() {
	if r.mem.timer != nil {
		r.mem.timer.Stop()
	}
	if r.mem.idle {
		r.mem.idle = false
		if r.mem.tuned {
			debug.SetGCPercent(busyGCPercent)
		}
	}
}

// releaseWhenIdle returns to the idle settings and hands free memory back
// to the OS once no run has been running for idleRelease. Caller holds
// r.mu.
func (r *Runner) releaseWhenIdle() {
	if r.mem.timer != nil {
		r.mem.timer.Stop()
	}
	r.mem.timer = time.AfterFunc(idleRelease, func() {
		r.mu.Lock()
		idle := len(r.st.CurrentTasks) == 0
		if idle {
			r.memoryIdle()
		}
		r.mu.Unlock()
		if idle {
			debug.FreeOSMemory()
		}
	})
}
