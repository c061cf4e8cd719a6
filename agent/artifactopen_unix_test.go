//go:build unix

package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/devqueue"
)

const secretBody = "accessToken: secret-token\n"

// linkTree is a task directory as a hostile task leaves it, beside a
// root-only secret (outside/secret) it must not get uploaded.
type linkTree struct {
	dir, task, outside, secret string
}

func newLinkTree(t *testing.T) linkTree {
	t.Helper()
	dir := testTempDir(t)
	lt := linkTree{dir: dir, task: filepath.Join(dir, "task"), outside: filepath.Join(dir, "outside")}
	lt.secret = filepath.Join(lt.outside, "secret")
	writeTestFile(t, lt.secret, secretBody)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(lt.secret, 0o600))
	in := func(p string) string { return filepath.Join(lt.task, p) }
	writeTestFile(t, in("real.txt"), "real")
	writeTestFile(t, in("sub/inner.txt"), "inner")
	must(os.Symlink(lt.secret, in("link-out.txt")))
	must(os.Symlink("../outside/secret", in("link-rel-out.txt")))
	must(os.Symlink(lt.outside, in("up")))
	must(syscall.Mkfifo(in("fifo"), 0o644))
	must(os.Symlink("/dev/zero", in("zero")))
	must(os.Symlink("real.txt", in("in-link.txt")))
	must(os.Symlink("sub", in("dir-link")))
	must(os.Symlink(filepath.Join(lt.task, "real.txt"), in("abs-in-link.txt")))
	l, err := net.Listen("unix", in("sock"))
	must(err)
	t.Cleanup(func() { l.Close() })

	writeTestFile(t, in("tree/ok.txt"), "ok")
	writeTestFile(t, in("tree/nested/deeper/ok2.txt"), "ok2")
	must(os.Symlink(lt.secret, in("tree/link-out")))
	must(os.Symlink(lt.outside, in("tree/link-dir-out")))
	must(syscall.Mkfifo(in("tree/fifo"), 0o644))
	must(os.Symlink("../ok.txt", in("tree/nested/in-link")))
	return lt
}

func (lt linkTree) root(t *testing.T) *os.Root {
	t.Helper()
	root, err := os.OpenRoot(lt.task)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// No artifact reads outside the task directory: links out (in the last
// component or a parent, absolute or relative, to a file, a directory or
// /dev/zero), named pipes and sockets are error artifacts, and the walk of
// a directory does not follow them; links that stay inside are followed.
// On the old code (filepath.Join and os.Open), link-out.txt, up/secret and
// tree/link-out uploaded the secret, and fifo blocked the run for ever.
func TestResolveArtifactsStayInTaskDir(t *testing.T) {
	lt := newLinkTree(t)
	root := lt.root(t)
	specs := []PayloadArtifact{{Type: DirectoryArtifact, Path: "tree"}, {Type: DirectoryArtifact, Path: "up", Name: "dir-up"}}
	for _, p := range []string{"link-out.txt", "link-rel-out.txt", "up/secret", "fifo", "zero", "sock", "in-link.txt",
		"dir-link", "abs-in-link.txt", "real.txt", "dir-link/inner.txt"} {
		specs = append(specs, PayloadArtifact{Type: FileArtifact, Path: p})
	}
	got := resolveArtifacts(root, lt.task, specs, time.Now().Add(time.Hour))

	wantFiles := map[string]string{
		"tree/nested/deeper/ok2.txt": "ok2", "tree/nested/in-link": "ok", "tree/ok.txt": "ok",
		"in-link.txt": "real", "real.txt": "real", "dir-link/inner.txt": "inner",
	}
	wantErrors := map[string]string{
		"tree/fifo": "named pipe", "tree/link-dir-out": "leads out of", "tree/link-out": "leads out of",
		"dir-up": "leads out of", "link-out.txt": "leads out of",
		"link-rel-out.txt": "leads out of", "up/secret": "leads out of",
		"fifo": "named pipe", "zero": "leads out of", "sock": "socket", "dir-link": "exists as a directory",
		// os.Root refuses absolute links, even to a file inside.
		"abs-in-link.txt": "leads out of",
	}
	seen := map[string]bool{}
	for _, a := range got {
		seen[a.Name] = true
		switch {
		case a.Kind == KindFile:
			want, ok := wantFiles[a.Name]
			if !ok {
				t.Errorf("%s is uploaded as a file, want an error artifact", a.Name)
			}
			if body := readArtifact(t, a); body != want || strings.Contains(body, "secret-token") {
				t.Errorf("%s reads %q, want %q", a.Name, body, want)
			}
		case a.Kind == KindError:
			want, ok := wantErrors[a.Name]
			if !ok {
				t.Errorf("%s is an error artifact (%s), want a file", a.Name, a.Message)
			}
			if a.Reason != ReasonInvalidResource || !strings.Contains(a.Message, want) {
				t.Errorf("%s: %s (%s), want invalid-resource-on-worker saying %q", a.Name, a.Message, a.Reason, want)
			}
		}
	}
	for name := range wantFiles {
		if !seen[name] {
			t.Errorf("no artifact %s", name)
		}
	}
	for name := range wantErrors {
		if !seen[name] {
			t.Errorf("no artifact %s", name)
		}
	}
}

// A path outside the task directory that reaches resolveArtifacts without
// the payload check is still refused, and nothing under it is walked.
func TestResolveArtifactsRefusesPathsOutside(t *testing.T) {
	lt := newLinkTree(t)
	got := resolveArtifacts(lt.root(t), lt.task, []PayloadArtifact{
		{Type: DirectoryArtifact, Path: "..", Name: "public/up"},
		{Type: FileArtifact, Path: "../outside/secret", Name: "public/secret"},
	}, time.Now().Add(time.Hour))
	if len(got) != 2 || got[0].Kind != KindError || got[1].Kind != KindError {
		t.Fatalf("artifacts %+v, want two error artifacts", got)
	}
}

// A file checked when the artifacts were resolved and replaced by a link
// before its upload is refused at the upload: every read opens it again
// through the root, and the copy is read from that descriptor.
func TestArtifactSwappedForLinkAfterResolve(t *testing.T) {
	lt := newLinkTree(t)
	root := lt.root(t)
	swap := filepath.Join(lt.task, "swap.txt")
	writeTestFile(t, swap, "harmless")
	got := resolveArtifacts(root, lt.task, []PayloadArtifact{{Type: FileArtifact, Path: "swap.txt", Name: "public/swap.txt", ContentEncoding: "gzip"}}, time.Now().Add(time.Hour))
	if len(got) != 1 || got[0].Kind != KindFile {
		t.Fatalf("artifacts %+v, want one file", got)
	}
	if err := os.Remove(swap); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lt.secret, swap); err != nil {
		t.Fatal(err)
	}

	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		puts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	if err := putFile(context.Background(), srv.Client(), srv.URL, got[0]); err == nil || puts.Load() != 0 {
		t.Errorf("upload of the swapped file: %v after %d PUTs, want an error and none", err, puts.Load())
	}
	if _, err := artifactSHA256(got[0]); err == nil {
		t.Error("chain of trust digested the swapped file")
	}
	out := filepath.Join(lt.dir, "artifacts")
	run := &LocalRun{artifactsDir: out}
	if err := run.Publish(context.Background(), got[0]); err == nil {
		t.Error("local run copied the swapped file")
	}
	if b, err := os.ReadFile(filepath.Join(out, "public", "swap.txt")); err == nil {
		t.Errorf("local copy holds %q", b)
	}
}

// runner run-task copies artifacts under its directory only: a name that
// leaves it, or a link already in it, cannot put the copy elsewhere.
func TestLocalRunCopiesInsideArtifactsDir(t *testing.T) {
	lt := newLinkTree(t)
	root := lt.root(t)
	out := filepath.Join(lt.dir, "artifacts")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lt.outside, filepath.Join(out, "linked")); err != nil {
		t.Fatal(err)
	}
	run := &LocalRun{artifactsDir: out}
	art := resolveArtifacts(root, lt.task, []PayloadArtifact{{Type: FileArtifact, Path: "real.txt"}}, time.Now().Add(time.Hour))[0]
	for _, name := range []string{"../escaped.txt", "linked/escaped.txt", "/tmp/escaped.txt"} {
		art.Name = name
		if err := run.Publish(context.Background(), art); err == nil {
			t.Errorf("artifact named %q was copied", name)
		}
	}
	for _, p := range []string{filepath.Join(lt.dir, "escaped.txt"), filepath.Join(lt.outside, "escaped.txt")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	art.Name = "public/real.txt"
	if err := run.Publish(context.Background(), art); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "public", "real.txt")); err != nil || string(b) != "real" {
		t.Errorf("copy %q, %v", b, err)
	}
}

// A file the task's account could not read (another account's, mode
// 0600), such as a hard link the task made to it, is not uploaded; the
// task's own files and files readable by all are.
func TestArtifactForeignFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the task directory to another account (CI runs as root)")
	}
	lt := newLinkTree(t)
	const taskUID = 4242
	in := func(p string) string { return filepath.Join(lt.task, p) }
	if err := os.Link(lt.secret, in("hard.txt")); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, in("own.txt"), "own")
	writeTestFile(t, in("public.txt"), "public")
	for _, c := range []struct {
		p    string
		uid  int
		mode os.FileMode
	}{{".", taskUID, 0o700}, {"own.txt", taskUID, 0o600}, {"public.txt", 0, 0o644}} {
		if err := os.Chown(in(c.p), c.uid, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(in(c.p), c.mode); err != nil {
			t.Fatal(err)
		}
	}
	got := resolveArtifacts(lt.root(t), lt.task, []PayloadArtifact{
		{Type: FileArtifact, Path: "hard.txt"}, {Type: FileArtifact, Path: "own.txt"}, {Type: FileArtifact, Path: "public.txt"},
	}, time.Now().Add(time.Hour))
	if len(got) != 3 {
		t.Fatalf("artifacts %+v", got)
	}
	if got[0].Kind != KindError || !strings.Contains(got[0].Message, "belongs to another account") {
		t.Errorf("hard link to a root-only file: %+v, want an error artifact", got[0])
	}
	for _, a := range got[1:] {
		if a.Kind != KindFile {
			t.Errorf("%s: %+v, want a file", a.Name, a)
		}
	}
}

// Through the queue: a link out of the task directory and a named pipe
// are error artifacts and their content never reaches a putUrl; regular
// files upload, gzipped or not, from the descriptor opened in the root.
func TestQueueArtifactsStayInTaskDir(t *testing.T) {
	e := newEnv(t, devqueue.Config{})
	e.startAgent(e.config())
	secret := filepath.Join(e.dir, "secret")
	writeTestFile(t, secret, secretBody)
	id := e.createTask(map[string]any{
		"command": [][]string{{"/bin/sh", "-c", "ln -s " + secret + " leak.txt && mkfifo fifo && echo good > good.txt && printf png > good.png"}},
		"artifacts": []map[string]any{
			{"type": "file", "path": "leak.txt", "name": "public/leak.txt"},
			{"type": "file", "path": "fifo", "name": "public/fifo"},
			{"type": "file", "path": "good.txt", "name": "public/good.txt"},
			{"type": "file", "path": "good.png", "name": "public/good.png"},
		},
		"maxRunTime": 60,
	})
	expectRun(t, e.waitRun(id, 0), "failed", "failed")
	arts := e.artifacts(id, 0)
	for name, kind := range map[string]string{"public/leak.txt": "error", "public/fifo": "error", "public/good.txt": "s3", "public/good.png": "s3"} {
		if arts[name].StorageType != kind {
			t.Errorf("artifact %s: storageType %q, want %q (all: %v)", name, arts[name].StorageType, kind, arts)
		}
	}
	for name, want := range map[string]string{"public/good.txt": "good\n", "public/good.png": "png"} {
		if got := e.artifactContent(id, 0, name); got != want {
			t.Errorf("artifact %s = %q, want %q", name, got, want)
		}
	}
	if log := e.artifactContent(id, 0, BackingLogName); strings.Contains(log, "secret-token") || !strings.Contains(log, "public/leak.txt: File artifact") {
		t.Errorf("log:\n%s", log)
	}
}

// A Buildbot build's properties file is read as artifacts are: a link to
// a file outside the task directory (here JSON, as the runner's state
// is) sets no property, and the build is not spoiled by it silently.
func TestBBPropertiesFileStaysInTaskDir(t *testing.T) {
	r := testBBRun(t, BuilderResults{})
	lt := newLinkTree(t)
	writeTestFile(t, lt.secret, `{"machineToken": "secret-token"}`)
	r.taskDir = lt.task
	if err := os.Symlink(lt.secret, filepath.Join(lt.task, PropertiesFileName)); err != nil {
		t.Fatal(err)
	}
	props, err := r.properties()
	if err == nil || !strings.Contains(err.Error(), PropertiesFileName) {
		t.Errorf("properties through a link out: %v, want an error naming the file", err)
	}
	if _, ok := props["machineToken"]; ok {
		t.Errorf("properties %s hold the file the link points to", props)
	}
	if err := os.Remove(filepath.Join(lt.task, PropertiesFileName)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(lt.task, PropertiesFileName), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.properties(); err == nil {
		t.Error("a named pipe as the properties file gave no error")
	}
}
