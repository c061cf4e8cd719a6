package testrunner

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// Machine is what a test sets of a runner's configuration and options;
// Start fills in the rest.
type Machine struct {
	// Name names the runner in the test's errors.
	Name string
	// Dir holds its configuration file, state and task directories (and,
	// in the state directory, its control socket). When empty, a short
	// temporary directory removed when the test ends: the socket's path
	// must fit a sockaddr.
	Dir string
	// Config adds top-level keys to the configuration, or replaces them:
	// the agent's (rootURL, credentials, taskQueueId, …); "runner" is
	// Runner's.
	Config map[string]any
	// Runner adds keys to the configuration's runner section, or replaces
	// them: "provisioner" (see Provisioner), "buildbot", "source", ….
	Runner map[string]any
	// Options are the runner's options (Logger, Facts).
	Options runner.Options
}

// Start writes m's configuration to runner.yml in its directory, loads it
// as the runner service does and runs the runner until the test ends,
// when an error the runner returns fails the test. It returns a client of
// the runner's control API, which answers once the runner is up.
func Start(t testing.TB, m Machine) *runner.Client {
	t.Helper()
	dir := m.Dir
	if dir == "" {
		dir = testsvc.TempDir(t, "lrrun-")
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("runner %s: %v", m.Name, err)
	}
	section := map[string]any{
		"reboot":   map[string]any{"command": []string{"/bin/true"}},
		"checks":   map[string]any{"diskFreeMinMB": 1, "memFreeMinMB": 1},
		"watchdog": map[string]any{"timeout": "0s"},
	}
	maps.Copy(section, m.Runner)
	cfg := map[string]any{
		"stateDir":     filepath.Join(dir, "state"),
		"tasksDir":     filepath.Join(dir, "tasks"),
		"idlePollWait": "10ms",
		// Set explicitly: tests of the runner's life, not of task users,
		// run tasks as the runner's own account.
		"taskUser": "service",
	}
	maps.Copy(cfg, m.Config)
	cfg["runner"] = section
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("runner %s's config: %v", m.Name, err)
	}
	path := filepath.Join(dir, "runner.yml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatalf("runner %s's config: %v", m.Name, err)
	}
	ac, rc, err := runner.Load(path)
	if err != nil {
		t.Fatalf("load runner %s's config: %v", m.Name, err)
	}
	r, err := runner.New(ac, rc, m.Options)
	if err != nil {
		t.Fatalf("runner %s: %v", m.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner %s: %v", m.Name, err)
		}
	})
	return runner.NewClient(rc.ControlSocket)
}

// Provisioner is the runner section's "provisioner" entry for a runner
// enrolled at url with enrollToken, heartbeating every heartbeat. Its
// instance metadata endpoint is a closed loopback port, so the runner
// knows at once that it is not on EC2 (and, on a build machine that is an
// EC2 instance, does not register with that instance's identity).
func Provisioner(t testing.TB, url, enrollToken string, heartbeat time.Duration) map[string]any {
	t.Helper()
	return map[string]any{
		"url": url, "enrollmentToken": enrollToken,
		"heartbeatInterval": heartbeat.String(), "pollWait": "2s", "imdsEndpoint": closedURL(t),
	}
}

// Facts are this computer's facts under host name host and serial SN-host,
// for runner.Options.Facts: several runners on one computer then register
// as several machines.
func Facts(t testing.TB, host string) *client.Facts {
	t.Helper()
	facts, _, err := runner.MachineRegistration(context.Background(), closedURL(t))
	if err != nil {
		t.Fatalf("machine facts: %v", err)
	}
	facts.Hostname, facts.Serial = host, "SN-"+host
	return &facts
}

// Status returns a reader of the runner's status through c: nil while its
// control API does not answer.
func Status(c *runner.Client) func() *runner.Status {
	return func() *runner.Status {
		s, err := c.Status(context.Background())
		if err != nil {
			return nil
		}
		return s
	}
}

// closedURL is the URL of a loopback port nothing listens on: connections
// to it are refused at once.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("a free port: %v", err)
	}
	u := "http://" + ln.Addr().String()
	_ = ln.Close()
	return u
}
