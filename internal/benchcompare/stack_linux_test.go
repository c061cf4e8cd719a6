//go:build linux

package benchcompare

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// tcModule is the Taskcluster module whose generic-worker is measured; it
// must match the version go.mod pins (checked by gwSourceDir).
const tcModule = "github.com/taskcluster/taskcluster/v44"

// binaries are the executables the comparison runs, built into dir/bin.
type binaries struct {
	devstack, runner, genericWorker, livelog, proxy string
	gwVersion                                       string
}

// goOut runs `go args...` in dir and returns its trimmed standard output.
func goOut(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// buildBinaries builds labrunner's runner and devstack from this module,
// and generic-worker (simple engine), livelog and taskcluster-proxy from the
// Taskcluster module at the version go.mod requires, into dir/bin.
func buildBinaries(t testing.TB, dir string) binaries {
	t.Helper()
	repo := goOut(t, ".", "list", "-m", "-f", "{{.Dir}}")
	tcDir := goOut(t, repo, "list", "-m", "-f", "{{.Dir}}", tcModule)
	tcVersion := goOut(t, repo, "list", "-m", "-f", "{{.Version}}", tcModule)
	if tcDir == "" {
		goOut(t, repo, "mod", "download", tcModule)
		tcDir = goOut(t, repo, "list", "-m", "-f", "{{.Dir}}", tcModule)
	}
	bin := filepath.Join(dir, "bin")
	b := binaries{
		devstack: filepath.Join(bin, "devstack"), runner: filepath.Join(bin, "runner"),
		genericWorker: filepath.Join(bin, "generic-worker"), livelog: filepath.Join(bin, "livelog"),
		proxy: filepath.Join(bin, "taskcluster-proxy"), gwVersion: tcVersion,
	}
	// -trimpath, as `make cross` builds linux/amd64: within `make test`
	// the packages come from its build cache.
	goOut(t, repo, "build", "-trimpath", "-o", bin+"/", "./cmd/devstack", "./cmd/runner")
	// generic-worker's module is its own (workers/generic-worker has no
	// go.mod of its own: it builds within the Taskcluster module).
	goOut(t, filepath.Join(tcDir, "workers", "generic-worker"), "build", "-tags", "simple", "-o", b.genericWorker, ".")
	goOut(t, filepath.Join(tcDir, "tools", "livelog"), "build", "-o", b.livelog, ".")
	goOut(t, filepath.Join(tcDir, "tools", "taskcluster-proxy"), "build", "-o", b.proxy, ".")
	return b
}

// proc is a started worker or devstack process, in its own process group.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned; err is then set
	err    error
	log    string
}

// wait waits for the process to end and returns what Wait returned.
func (p *proc) wait() error {
	<-p.exited
	return p.err
}

// startProc starts path with args in dir, its output to logPath.
func startProc(t testing.TB, dir, logPath string, stdout io.Writer, path string, args ...string) *proc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s: %v", logPath, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop interrupts the process, kills its group after 20 s, and kills
// whatever of its group is left (live log servers, task processes). The
// group is its own (Setpgid) and is signalled only while the process has
// not been reaped, so its id cannot have been reused; stopping twice is a
// no-op.
func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

// tail is the last lines of the process's log, for failure messages.
func (p *proc) tail() string {
	raw, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// stack is a running `devstack serve` and a root client of its queue.
type stack struct {
	pulseURL string // RabbitMQ, where the dev queue publishes Pulse messages
	rootURL  string
	creds    tcclient.Credentials
	queue    *tcqueue.Queue
}

// startDevstack runs `devstack serve` on a free port, publishing Pulse
// messages to RabbitMQ at pulseURL, and reads the environment it prints.
func startDevstack(t testing.TB, b binaries, dir, pulseURL string) *stack {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, dir, filepath.Join(dir, "devstack.log"), w, b.devstack, "serve", "--listen", "127.0.0.1:0", "--dir", filepath.Join(dir, "devstack"), "--pulse", pulseURL)
	w.Close()
	env := map[string]string{}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for env["TASKCLUSTER_ROOT_URL"] == "" || env["TASKCLUSTER_ACCESS_TOKEN"] == "" || env["TASKCLUSTER_CLIENT_ID"] == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("devstack serve ended before printing its environment:\n%s", p.tail())
			}
			if k, v, found := strings.Cut(line, "="); found {
				env[k] = v
			}
		case <-deadline:
			t.Fatalf("devstack serve printed no root URL in 60 s:\n%s", p.tail())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	s := &stack{pulseURL: pulseURL, rootURL: env["TASKCLUSTER_ROOT_URL"], creds: tcclient.Credentials{ClientID: env["TASKCLUSTER_CLIENT_ID"], AccessToken: env["TASKCLUSTER_ACCESS_TOKEN"]}}
	s.queue = tcqueue.New(&s.creds, s.rootURL)
	if err := s.queue.Ping(); err != nil {
		t.Fatalf("ping the dev queue at %s: %v", s.rootURL, err)
	}
	return s
}

// queueName makes a fresh task queue's worker type for one worker, round
// and scenario (at most 38 characters).
func queueName(worker string, round int, scenario string) string {
	short := map[string]string{Labrunner: "lr", GenericWorker: "gw"}[worker]
	return fmt.Sprintf("%s-r%d-%s-%d", short, round, scenario, time.Now().UnixNano()%1_000_000_000)
}
