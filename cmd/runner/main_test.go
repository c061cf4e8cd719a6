//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testsvc"
)

// execute runs the root command with args and returns its exit code and
// stdout and stderr.
func execute(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		code = 1
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

func TestRunBadConfigListsProblemsAndExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yml")
	if err := os.WriteFile(path, []byte("rootURL: not-a-url\ncapacity: 0\nworkerGroup: lab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := execute(context.Background(), "run", "--config", path)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, key := range []string{"rootURL:", "credentials.clientId:", "credentials.accessToken:", "taskQueueId:", "workerId:", "stateDir:", "tasksDir:"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, key) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %s in:\n%s", key, stderr)
		}
	}
}

func TestRunTaskExitCodeAndArtifacts(t *testing.T) {
	dir := t.TempDir()
	task := filepath.Join(dir, "task.json")
	if err := os.WriteFile(task, []byte(`{"payload": {"command": [["/bin/sh", "-c", "echo hello-terminal; echo data > out.txt; exit 7"]], "maxRunTime": 30,
		"artifacts": [{"type": "file", "path": "out.txt", "name": "public/out.txt"}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	arts := filepath.Join(dir, "artifacts")
	code, stdout, stderr := execute(context.Background(), "run-task", task, "--artifacts", arts, "--tasks-dir", filepath.Join(dir, "tasks"))
	if code != 7 {
		t.Fatalf("exit code %d, want the task's 7; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "hello-terminal") || !strings.Contains(stdout, "Result: failed") {
		t.Errorf("log not streamed to the terminal:\n%s", stdout)
	}
	if b, err := os.ReadFile(filepath.Join(arts, "public", "out.txt")); err != nil || string(b) != "data\n" {
		t.Errorf("artifact: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(arts, "public", "logs", "live_backing.log")); err != nil {
		t.Errorf("log not copied with the artifacts: %v", err)
	}
}

func TestRunTaskBarePayloadCompletes(t *testing.T) {
	dir := t.TempDir()
	task := filepath.Join(dir, "payload.json")
	if err := os.WriteFile(task, []byte(`{"command": [["/bin/sh", "-c", "true"]], "maxRunTime": 30}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := execute(context.Background(), "run-task", task, "--tasks-dir", filepath.Join(dir, "tasks")); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
}

func TestRunAgainstDevstack(t *testing.T) {
	s, err := devstack.Start(context.Background(), devstack.Options{
		Queue:  devqueue.Config{PollWait: time.Second},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	dir := t.TempDir()
	wt := "wt-" + strings.ReplaceAll(testsvc.Unique(), "_", "-")
	if len(wt) > 38 {
		wt = wt[:38]
	}
	cfg := map[string]any{
		"rootURL":      s.RootURL,
		"credentials":  map[string]string{"clientId": s.Credentials.ClientID, "accessToken": s.Credentials.AccessToken},
		"taskQueueId":  "lab/" + wt,
		"workerGroup":  "lab",
		"workerId":     "machine-1",
		"stateDir":     filepath.Join(dir, "state"),
		"tasksDir":     filepath.Join(dir, "tasks"),
		"taskUser":     "service", // the CLI is under test, not task users
		"livelog":      map[string]string{"listen": "127.0.0.1:0", "publicURL": "http://127.0.0.1:1"},
		"idlePollWait": "10ms",
	}
	b, _ := json.Marshal(cfg) // JSON is YAML
	path := filepath.Join(dir, "agent.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _, stderr := execute(ctx, "run", "--config", path)
		if code != 0 {
			t.Errorf("runner run exited %d:\n%s", code, stderr)
		}
		done <- code
	}()
	t.Cleanup(func() { cancel(); <-done })

	creds := s.Credentials
	q := tcqueue.New(&creds, s.RootURL)
	id := slugid.Nice()
	now := time.Now().UTC()
	if _, err := q.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: "lab/" + wt,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  json.RawMessage(`{"command": [["/bin/sh", "-c", "echo hi"]], "maxRunTime": 30}`),
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "t", Owner: "t@example.com", Source: "https://example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := q.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.Status.Runs; len(r) > 0 && r[0].State == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not completed: %+v", st.Status.Runs)
		}
		time.Sleep(20 * time.Millisecond)
	}

}

// TestRunCancelsThroughRabbitMQ runs `runner run` with a pulseURL against a
// devstack publishing on RabbitMQ: a cancelled task's processes must go
// although status polling is off (1 h) and no reclaim is due (20 min).
func TestRunCancelsThroughRabbitMQ(t *testing.T) {
	amqpURL := testsvc.AMQPURL(t)
	s, err := devstack.Start(context.Background(), devstack.Options{
		PulseURL: amqpURL,
		Queue:    devqueue.Config{PollWait: time.Second},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	dir := t.TempDir()
	unique := strings.ReplaceAll(testsvc.Unique(), "_", "-")
	wt := "wt-" + unique
	if len(wt) > 38 {
		wt = wt[:38]
	}
	cfg := map[string]any{
		"rootURL":            s.RootURL,
		"credentials":        map[string]string{"clientId": s.Credentials.ClientID, "accessToken": s.Credentials.AccessToken},
		"taskQueueId":        "lab/" + wt,
		"workerGroup":        "lab",
		"workerId":           "machine-1",
		"stateDir":           filepath.Join(dir, "state"),
		"tasksDir":           filepath.Join(dir, "tasks"),
		"taskUser":           "service", // the CLI is under test, not task users
		"pulseURL":           amqpURL,
		"pulseQueue":         "queue/guest/labrunner-test-" + unique,
		"cancelPollInterval": "1h",
		"idlePollWait":       "10ms",
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "agent.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, _, stderr := execute(ctx, "run", "--config", path); code != 0 {
			t.Errorf("runner run exited %d:\n%s", code, stderr)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	creds := s.Credentials
	q := tcqueue.New(&creds, s.RootURL)
	pidFile := filepath.Join(dir, "pid")
	id := slugid.Nice()
	now := time.Now().UTC()
	payload, _ := json.Marshal(map[string]any{
		"command":    [][]string{{"/bin/sh", "-c", "sleep 300 & echo $! > " + pidFile + "; wait"}},
		"maxRunTime": 600,
	})
	if _, err := q.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: "lab/" + wt,
		Created:     tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)), Expires: tcclient.Time(now.Add(24 * time.Hour)),
		Payload:  payload,
		Metadata: tcqueue.TaskMetadata{Name: "t", Description: "t", Owner: "t@example.com", Source: "https://example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitUntil(t, "task started", func() bool {
		raw, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(raw), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
		return err == nil
	})
	if _, err := q.CancelTask(id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "task process gone after cancel", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) })
}

// waitUntil polls cond until it holds, failing the test after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestRunTaskMalformedPayloadNamesField(t *testing.T) {
	dir := t.TempDir()
	task := filepath.Join(dir, "payload.json")
	if err := os.WriteFile(task, []byte(`{"command": [["true"]], "maxRunTime": "soon"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(context.Background(), "run-task", task, "--tasks-dir", filepath.Join(dir, "tasks"))
	if code != 70 {
		t.Fatalf("exit code %d, want 70 (exception); stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "payload.maxRunTime") || !strings.Contains(stdout, "exception/malformed-payload") {
		t.Errorf("log does not name the bad field and the resolution:\n%s", stdout)
	}
	// Each problem is listed once; the result line refers to the list.
	if n := strings.Count(stdout, "payload.maxRunTime"); n != 1 {
		t.Errorf("the problem is printed %d times, want once:\n%s", n, stdout)
	}
	if !strings.Contains(stdout, "Result: exception/malformed-payload (malformed payload: 1 problem, listed above)") {
		t.Errorf("result line does not sum up the problems:\n%s", stdout)
	}
	// A local run has no worker identity or pool to show.
	if strings.Contains(stdout, "Worker: /") || strings.Contains(stdout, "Pool: \n") || !strings.Contains(stdout, "Worker: this machine, a local run with no queue") {
		t.Errorf("header shows an empty worker or pool:\n%s", stdout)
	}
}

func TestRunTaskUnreadableFileExits2(t *testing.T) {
	code, _, stderr := execute(context.Background(), "run-task", filepath.Join(t.TempDir(), "missing.json"))
	if code != 2 || !strings.Contains(stderr, "missing.json") {
		t.Fatalf("exit code %d, stderr %q; want 2 naming the file", code, stderr)
	}
}

// run-task runs the task as a per-task user by default (root here), as
// the caller with --task-user service; a wrong mode names the flag.
func TestRunTaskTaskUser(t *testing.T) {
	dir := t.TempDir()
	task := filepath.Join(dir, "payload.json")
	if err := os.WriteFile(task, []byte(`{"command": [["/bin/sh", "-c", "id -un"]], "maxRunTime": 30}`), 0o644); err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execute(context.Background(), "run-task", task, "--tasks-dir", filepath.Join(dir, "tasks"), "--task-user", "service")
	if code != 0 || !strings.Contains(stdout, "\n"+me.Username+"\n") {
		t.Errorf("--task-user service: exit %d, want the task run as %s:\n%s%s", code, me.Username, stdout, stderr)
	}
	if os.Geteuid() == 0 {
		code, stdout, stderr = execute(context.Background(), "run-task", task, "--tasks-dir", filepath.Join(dir, "tasks"))
		if code != 0 || !regexp.MustCompile(`Running as task user (task_[0-9a-f]+) .*\n(.*\n)*task_[0-9a-f]+\n`).MatchString(stdout) {
			t.Errorf("default: exit %d, want the task run as a task user:\n%s%s", code, stdout, stderr)
		}
	} else {
		code, _, stderr = execute(context.Background(), "run-task", task, "--tasks-dir", filepath.Join(dir, "tasks"))
		if code != 2 || !strings.Contains(stderr, "--task-user service") {
			t.Errorf("default without root: exit %d, want 2 and the fix named:\n%s", code, stderr)
		}
	}
	if code, _, stderr := execute(context.Background(), "run-task", task, "--task-user", "admin"); code != 2 || !strings.Contains(stderr, "--task-user") {
		t.Errorf("--task-user admin: exit %d, want 2 naming the flag:\n%s", code, stderr)
	}
}

// Without --wait-for-config a missing file is an error at once, as an
// operator typing the command expects; with it, a file that exists but is
// wrong is still reported and exits 2.
func TestRunWaitForConfigFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yml")
	if code, _, stderr := execute(context.Background(), "run", "--config", missing); code == 0 || !strings.Contains(stderr, "missing.yml") {
		t.Errorf("run with a missing config: exit %d, stderr %q; want a failure naming the file", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("rootURL: not-a-url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := execute(context.Background(), "run", "--wait-for-config", "--config", bad); code != 2 || !strings.Contains(stderr, "rootURL:") {
		t.Errorf("run --wait-for-config with a bad config: exit %d, stderr %q; want 2 naming rootURL", code, stderr)
	}
}
