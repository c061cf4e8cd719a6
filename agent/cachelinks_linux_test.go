package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/labrunner/labrunner/platform"
)

// rootOnly is a directory of root's, mode 0700, holding victim/precious:
// what a task would like the runner to move into a cache or delete.
func rootOnly(t *testing.T) (dir, precious string) {
	t.Helper()
	dir = filepath.Join(testTempDir(t), "outside")
	precious = filepath.Join(dir, "victim", "precious")
	if err := os.MkdirAll(filepath.Dir(precious), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(precious, []byte("root-only secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, precious
}

func checkUntouched(t *testing.T, precious string) {
	t.Helper()
	b, err := os.ReadFile(precious)
	if err != nil || string(b) != "root-only secret" {
		t.Errorf("%s outside the task directory: %q, %v", precious, b, err)
		return
	}
	for p := precious; p != filepath.Dir(filepath.Dir(precious)); p = filepath.Dir(p) {
		if info, err := os.Lstat(p); err != nil || info.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s changed owner: %v", p, err)
		}
	}
}

// A task owns its directory and may swap the directory holding its cache,
// or the cache itself, for a link to a place only root can write. When
// the task ends, the runner (root) must neither move that place into the
// caches, where the next task would get it, nor purge it; and the cache
// is not kept.
func TestTaskCannotRedirectItsCacheThroughALink(t *testing.T) {
	for _, tc := range []struct {
		name, directory, swap string
		purge                 bool
	}{
		{"parent", "x/victim", "mv x x.old && ln -s OUTSIDE x", false},
		{"parent purged", "x/victim", "mv x x.old && ln -s OUTSIDE x; exit 3", true},
		{"cache itself", "x/victim", "mv x/victim x/old && ln -s OUTSIDE/victim x/victim", false},
		{"cache itself purged", "x/victim", "mv x/victim x/old && ln -s OUTSIDE/victim x/victim; exit 3", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _ := perTaskAgent(t)
			outside, precious := rootOnly(t)
			scopes := []string{"generic-worker:cache:c"}
			payload := map[string]any{
				"command":    [][]string{{"/bin/sh", "-c", "echo mine > " + tc.directory + "/mine && " + strings.ReplaceAll(tc.swap, "OUTSIDE", outside)}},
				"maxRunTime": 60,
				"mounts":     []map[string]any{{"cacheName": "c", "directory": tc.directory}},
			}
			if tc.purge {
				payload["onExitStatus"] = map[string]any{"purgeCaches": []int{3}}
			}
			res, log := runTaskDef(t, a, scopes, payload)
			if res.Resolution.State != StateFailed {
				t.Errorf("first task: %s, want failed (its cache cannot be kept):\n%s", res.Resolution, log)
			}
			taskUserOf(t, log)
			checkUntouched(t, precious)

			res, log = runTaskDef(t, a, scopes, map[string]any{
				"command":    [][]string{{"/bin/sh", "-c", "ls -A loot; cat loot/precious loot/mine; true"}},
				"maxRunTime": 60,
				"mounts":     []map[string]any{{"cacheName": "c", "directory": "loot"}},
			})
			if res.Resolution.State != StateCompleted || !strings.Contains(log, `No existing writable directory cache "c"`) {
				t.Errorf("second task was given a cache back: %s:\n%s", res.Resolution, log)
			}
			if strings.Contains(log, "root-only secret") || strings.Contains(log, "\nmine\n") {
				t.Errorf("second task read what it must not:\n%s", log)
			}
			checkUntouched(t, precious)
		})
	}
}

// The caches of a task whose processes survive it (the account is then
// kept) are purged: a survivor could write into them for the next task.
func TestCachesOfATaskWhoseProcessesSurviveArePurged(t *testing.T) {
	a, _, _ := perTaskAgent(t)
	t.Cleanup(func() { _, _ = platform.RemoveLeftTaskUsers(a.cfg.TasksDir) })
	// Stands in for a process the kill cannot reach (pid 1 is never the
	// task's, so nothing real is kept running).
	a.survivors = func(*platform.TaskUser) ([]int, error) { return []int{1}, nil }
	scopes := []string{"generic-worker:cache:c"}
	payload := func(script string) map[string]any {
		return map[string]any{"command": [][]string{{"/bin/sh", "-c", script}}, "maxRunTime": 60,
			"mounts": []map[string]any{{"cacheName": "c", "directory": "cache"}}}
	}
	res, log := runTaskDef(t, a, scopes, payload("echo left > cache/left"))
	if res.Resolution.State != StateCompleted || !strings.Contains(log, "survive the task: its writable caches are purged") {
		t.Fatalf("first task: %s:\n%s", res.Resolution, log)
	}
	a.survivors = (*platform.TaskUser).Survivors
	res, log = runTaskDef(t, a, scopes, payload("ls -A cache; cat cache/left; true"))
	if res.Resolution.State != StateCompleted || !strings.Contains(log, `No existing writable directory cache "c"`) || strings.Contains(log, "\nleft\n") {
		t.Errorf("the next task got the cache back: %s:\n%s", res.Resolution, log)
	}
}
