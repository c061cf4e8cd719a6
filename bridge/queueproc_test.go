package bridge

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

// queueProcess runs `devstack serve` as a process of its own, so that a
// benchmark can tell the CPU the bridge uses from the CPU the queue it
// talks to uses (in production the queue is elsewhere). It returns the
// root URL, the root credentials and the process id.
func queueProcess(b *testing.B) (string, tcclient.Credentials, int) {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/devstack").CombinedOutput(); err != nil {
		b.Fatalf("build devstack: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--dir", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start devstack: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	env := map[string]string{}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for env["TASKCLUSTER_ACCESS_TOKEN"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				b.Fatal("devstack exited before printing its environment")
			}
			if k, v, found := strings.Cut(l, "="); found {
				env[k] = v
			}
		case <-deadline:
			b.Fatal("devstack did not print its environment within 60 s")
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	return env["TASKCLUSTER_ROOT_URL"], tcclient.Credentials{ClientID: env["TASKCLUSTER_CLIENT_ID"], AccessToken: env["TASKCLUSTER_ACCESS_TOKEN"]}, cmd.Process.Pid
}
