//go:build linux

package benchcompare

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// worker starts one kind of worker for a task queue.
type worker struct {
	name string
	// settle is how long after a task resolved the worker is back in a
	// claimWork long poll: generic-worker lets at least 5 s pass between
	// claimWork calls (workers/generic-worker/main.go at v44.23.4), the
	// agent pauses only after an empty claimWork (idlePollWait).
	settle time.Duration
	// maxCapacity is the most tasks it runs at once (generic-worker v44
	// has no capacity setting: one at a time).
	maxCapacity int
	start       func(t testing.TB, s *stack, b binaries, dir, workerType string, o startOpts) *proc
}

// startOpts is what a scenario asks of the worker it starts.
type startOpts struct {
	capacity int
	// pulse subscribes labrunner to the queue's task-exception messages
	// (pulseURL) for fast cancellation; generic-worker has no such thing.
	pulse bool
	// drainGrace is labrunner's runner.drainGrace: how long a stop lets
	// running tasks go on (default 10 min); generic-worker has none.
	drainGrace time.Duration
	// rootURL, when set, is where the worker finds the queue in place of
	// the dev queue's own (a countingProxy in front of it).
	rootURL string
}

// queueURL is the root URL the worker is given.
func (o startOpts) queueURL(s *stack) string {
	if o.rootURL != "" {
		return o.rootURL
	}
	return s.rootURL
}

const provisionerID = "lab-bench"

func workers() []worker {
	return []worker{
		{name: Labrunner, settle: 500 * time.Millisecond, maxCapacity: 64, start: startLabrunner},
		{name: GenericWorker, settle: 5500 * time.Millisecond, maxCapacity: 1, start: startGenericWorker},
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// startLabrunner runs `runner run` with a live log server, as an operator
// would (docs/config.md). taskUser is set to service: generic-worker's
// simple engine runs tasks as the worker's own user, so that is the
// like-for-like choice (a per-task account adds its creation and removal
// to every task: docs/benchmarks.md, Task users).
func startLabrunner(t testing.TB, s *stack, b binaries, dir, workerType string, o startOpts) *proc {
	t.Helper()
	cfg := filepath.Join(dir, "runner.yml") // JSON is YAML
	c := map[string]any{
		"rootURL":     o.queueURL(s),
		"credentials": map[string]string{"clientId": s.creds.ClientID, "accessToken": s.creds.AccessToken},
		"taskUser":    "service",
		"taskQueueId": provisionerID + "/" + workerType, "workerGroup": "bench", "workerId": workerType,
		"capacity": max(o.capacity, 1),
		"stateDir": filepath.Join(dir, "state"), "tasksDir": filepath.Join(dir, "tasks"),
		"livelog": map[string]string{"listen": "127.0.0.1:0", "publicURL": "http://127.0.0.1:1"},
	}
	if o.pulse {
		c["pulseURL"] = s.pulseURL
	}
	if o.drainGrace > 0 {
		c["runner"] = map[string]string{"drainGrace": o.drainGrace.String()}
	}
	writeJSON(t, cfg, c)
	return startProc(t, dir, filepath.Join(dir, "runner.log"), nil, b.runner, "run", "--config", cfg)
}

// freePortPair finds p such that p and p+1 are free (generic-worker's
// livelog uses livelogPortBase and the next port).
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports for livelog")
	return 0
}

// startGenericWorker runs generic-worker (simple engine) with its live log,
// with the configuration keys of `generic-worker --help` at v44.23.4.
func startGenericWorker(t testing.TB, s *stack, b binaries, dir, workerType string, o startOpts) *proc {
	t.Helper()
	if o.capacity > 1 {
		t.Fatalf("generic-worker runs one task at a time, not %d", o.capacity)
	}
	key := filepath.Join(dir, "ed25519.key")
	kp := startProc(t, dir, filepath.Join(dir, "keypair.log"), nil, b.genericWorker, "new-ed25519-keypair", "--file", key)
	if err := kp.wait(); err != nil {
		t.Fatalf("generic-worker new-ed25519-keypair: %v\n%s", err, kp.tail())
	}
	cfg := filepath.Join(dir, "generic-worker.config")
	writeJSON(t, cfg, map[string]any{
		"rootURL": o.queueURL(s), "clientId": s.creds.ClientID, "accessToken": s.creds.AccessToken,
		"provisionerId": provisionerID, "workerType": workerType, "workerGroup": "bench", "workerId": workerType,
		"livelogExecutable": b.livelog, "livelogPortBase": freePortPair(t),
		"taskclusterProxyExecutable": b.proxy, "taskclusterProxyPort": freePortPair(t),
		"tasksDir": filepath.Join(dir, "tasks"), "cachesDir": filepath.Join(dir, "caches"),
		"downloadsDir": filepath.Join(dir, "downloads"), "ed25519SigningKeyLocation": key,
		"publicIP": "127.0.0.1", "requiredDiskSpaceMegabytes": 100,
		"sentryProject": "",
	})
	return startProc(t, dir, filepath.Join(dir, "generic-worker.log"), nil, b.genericWorker, "run", "--config", cfg)
}
