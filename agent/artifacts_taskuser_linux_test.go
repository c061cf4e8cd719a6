package agent

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runArtifactTask runs payload as a local task of a (per-task) and returns
// its result, its log and the directory its artifacts were copied to.
func runArtifactTask(t *testing.T, a *Agent, payload map[string]any) (RunResult, string, string) {
	t.Helper()
	def, err := json.Marshal(map[string]any{"payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	arts := filepath.Join(testTempDir(t), "artifacts")
	run, err := NewLocalRun(def, arts)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res := a.RunOne(context.Background(), run, &syncWriter{w: &out})
	return res, out.String(), arts
}

// noSecretIn fails the test if any file under dir holds the runner's token.
func noSecretIn(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "secret-token") {
			t.Errorf("artifact copy %s holds the runner's secret", p)
		}
		return nil
	})
}

// A task user's artifacts are read by the runner (root) only inside the
// task directory: links to the runner's state (root-only), in the last
// component or a parent, inside a directory artifact, to /dev/zero, and a
// named pipe are error artifacts; the run neither leaks nor hangs, its
// good artifacts are copied, and removing the task directory leaves what
// its links pointed to. On the old code the state file was copied as
// leak.txt, tree/leak and up.json, and the pipe blocked the run for ever.
func TestTaskUserArtifactsStayInTaskDir(t *testing.T) {
	a, stateFile, _ := perTaskAgent(t)
	stateDir := filepath.Dir(stateFile)
	outside := filepath.Join(testTempDir(t), "outside")
	writeTestFile(t, filepath.Join(outside, "precious"), "precious")
	script := strings.Join([]string{
		"set -e",
		"cat " + stateFile + " && exit 9 || true", // the task cannot read it itself
		"ln -s " + stateFile + " leak.txt",
		"mkdir -p tree/sub && echo ok > tree/sub/ok.txt && ln -s " + stateFile + " tree/leak && ln -s " + stateDir + " tree/leakdir",
		"ln -s " + stateDir + " up",
		"mkfifo fifo",
		"ln -s /dev/zero zero",
		"echo good > good.txt && ln -s good.txt good-link.txt",
		"ln -s " + outside + " keep",
	}, "\n")
	res, log, arts := runArtifactTask(t, a, map[string]any{
		"command":    [][]string{{"/bin/sh", "-c", script}},
		"maxRunTime": 60,
		"artifacts": []map[string]any{
			{"type": "file", "path": "leak.txt", "name": "public/leak.txt"},
			{"type": "directory", "path": "tree", "name": "public/tree"},
			{"type": "file", "path": "up/state.json", "name": "public/up.json"},
			{"type": "directory", "path": "up", "name": "public/updir"},
			{"type": "file", "path": "fifo", "name": "public/fifo"},
			{"type": "file", "path": "zero", "name": "public/zero"},
			{"type": "file", "path": "good.txt", "name": "public/good.txt"},
			{"type": "file", "path": "good-link.txt", "name": "public/good-link.txt"},
		},
	})
	taskUserOf(t, log)
	if res.Resolution != Failed || res.ExitCode != 0 {
		t.Errorf("result %+v, want failed (error artifacts) after the commands succeeded\n%s", res, log)
	}
	noSecretIn(t, arts)
	for _, want := range []string{
		"Artifact public/leak.txt: File artifact", "Artifact public/tree/leak: File artifact", "Artifact public/tree/leakdir: File artifact",
		"Artifact public/up.json: File artifact", "Artifact public/updir: Directory artifact",
		"Artifact public/fifo: File artifact", "is a named pipe", "Artifact public/zero: File artifact",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q\n%s", want, log)
		}
	}
	for name, want := range map[string]string{"public/good.txt": "good\n", "public/good-link.txt": "good\n", "public/tree/sub/ok.txt": "ok\n"} {
		if b, err := os.ReadFile(filepath.Join(arts, filepath.FromSlash(name))); err != nil || string(b) != want {
			t.Errorf("artifact %s = %q, %v; want %q", name, b, err, want)
		}
	}
	for _, p := range []string{filepath.Join(outside, "precious"), stateFile} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s after the task directory was removed: %v", p, err)
		}
	}
}

// Artifact paths leaving the task directory are refused before the task
// runs (exploit without code: the payload names the runner's config).
func TestTaskUserArtifactPathsOutsideRefused(t *testing.T) {
	a, _, configFile := perTaskAgent(t)
	rel, err := filepath.Rel(filepath.Join(a.cfg.TasksDir, "task_0"), configFile)
	if err != nil {
		t.Fatal(err)
	}
	res, log, arts := runArtifactTask(t, a, map[string]any{
		"command":    [][]string{{"/bin/true"}},
		"maxRunTime": 60,
		"artifacts": []map[string]any{
			{"type": "file", "path": rel, "name": "public/config.yml"},
			{"type": "directory", "path": "../..", "name": "public/state"},
		},
	})
	if res.Resolution.State != StateException || res.Resolution.Reason != ReasonMalformedPayload {
		t.Errorf("result %+v, want exception/malformed-payload\n%s", res, log)
	}
	for _, want := range []string{"payload.artifacts[0].path", "payload.artifacts[1].path", "leaves the task directory"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q\n%s", want, log)
		}
	}
	noSecretIn(t, arts)
}
