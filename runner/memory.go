package runner

// The runner's own memory. A lab machine's runner is idle most of its
// life (one claimWork long poll at a time, the checks once a minute) with
// about 1 MB of live heap, and what it keeps resident is taken from the
// tasks. Go's default (GOGC=100) lets the heap grow to 4 MB before
// collecting and returns freed pages to the OS only gradually, so an idle
// runner held 3–4 MB of garbage and free pages (docs/benchmarks.md, idle
// RSS). With a live heap this small a collection costs well under a
// millisecond, so collecting sooner is cheap.

import (
	"os"
	"runtime/debug"
	"time"
)

// gcPercent is the runner's GOGC: the heap may grow by a quarter of the
// live heap (at least 1 MB) before a collection, instead of doubling
// (at least 4 MB). GOGC in the environment still wins.
const gcPercent = 25

// tuneMemory sets the collector's target for the runner process, unless
// the operator set GOGC.
func tuneMemory() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// releaseMemory collects and returns every free page to the OS at once,
// after the boot (configuration, checks and their garbage). It runs in
// its own goroutine: a full collection with the runner's small heap takes
// about a millisecond.
func releaseMemory() {
	go debug.FreeOSMemory()
}

// idleRelease is how long the machine must stay without a run before the
// memory a run used (its log buffers, mostly) is returned: long enough
// that a busy machine, which claims its next task at once, does not pay
// for it between tasks.
const idleRelease = 2 * time.Second

// releaseWhenIdle returns free memory to the OS once no run has been
// running for idleRelease. Caller holds r.mu.
func (r *Runner) releaseWhenIdle() {
	if r.releaseTimer != nil {
		r.releaseTimer.Stop()
	}
	r.releaseTimer = time.AfterFunc(idleRelease, func() {
		r.mu.Lock()
		idle := len(r.st.CurrentTasks) == 0
		r.mu.Unlock()
		if idle {
			debug.FreeOSMemory()
		}
	})
}
