package runner

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// enrollOpts enrols into a fresh directory under the test's, with fixed
// facts and no client retries.
func (e *linkEnv) enrollOpts(name, token string) EnrollOptions {
	dir := filepath.Join(e.dir, name)
	return EnrollOptions{
		ConfigPath: filepath.Join(dir, "etc", "runner.yml"), DataDir: filepath.Join(dir, "data"),
		ProvisionerURL: e.url, Token: token,
		ClientOptions: []client.Option{client.WithRetries(0, 0, 0)},
		Facts: func(context.Context) (client.Facts, error) {
			return client.Facts{Hostname: name, OS: "windows", Arch: "amd64"}, nil
		},
	}
}

func TestEnrollWritesConfigAndMachineTokenAndTheRunnerLinksWithThem(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := e.enrollOpts("mdc1-w01", e.enrollToken(1))
	o.PoolHint, o.Tags = "win11-hw", map[string]string{"gpu": "yes", "rack": "4"}
	res, err := Enroll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.MachineID == "" || res.AlreadyEnrolled {
		t.Fatalf("result %+v", res)
	}
	m, err := e.admin.GetMachine(context.Background(), res.MachineID)
	if err != nil {
		t.Fatalf("the machine is not in the provisioner: %v", err)
	}
	if got := m.Facts.Tags; got[PoolHintTag] != "win11-hw" || got["gpu"] != "yes" || got["rack"] != "4" {
		t.Errorf("facts.tags %v, want the pool hint and the tags", got)
	}

	cfg, err := os.ReadFile(o.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), o.Token) {
		t.Errorf("the config keeps the enrollment token:\n%s", cfg)
	}
	link, err := readLinkState(res.LinkStatePath)
	if err != nil || link.MachineID != res.MachineID || link.MachineToken == "" || link.URL != e.url {
		t.Fatalf("link state %+v, %v", link, err)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{o.ConfigPath: 0o600, res.LinkStatePath: 0o600, o.DataDir: 0o700, filepath.Dir(o.ConfigPath): 0o700, filepath.Join(o.DataDir, "tasks"): 0o700} {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
			}
		}
	}

	// The service starts from these files alone: no enrollment token, the
	// saved machine token.
	ac, rc, err := Load(o.ConfigPath)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if ac.StateDir != o.DataDir || rc.Provisioner.URL != e.url || rc.Provisioner.EnrollmentToken != "" {
		t.Errorf("config: stateDir %q url %q token %q", ac.StateDir, rc.Provisioner.URL, rc.Provisioner.EnrollmentToken)
	}
	rc.Provisioner.IMDSEndpoint = closedLoopbackURL(t) // never probe the real metadata address from a test
	lc, err := rc.Provisioner.LinkConfig(context.Background(), ac.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	lc.Snapshot = func() client.HeartbeatRequest { return client.HeartbeatRequest{State: client.StateIdle} }
	lc.Handle = func(context.Context, client.Directive) error { return nil }
	l, err := NewProvisionerLink(lc)
	if err != nil {
		t.Fatalf("the runner cannot link with the enrolled files: %v", err)
	}
	select {
	case <-l.Ready():
	default:
		t.Fatal("the link is not ready from the saved machine token")
	}
	if id, _, _ := l.session(); id != res.MachineID {
		t.Errorf("link machine %q, want %q", id, res.MachineID)
	}
}

func TestEnrollWithASpentOrUnknownTokenWritesNothing(t *testing.T) {
	e := newLinkEnv(t, nil)
	tok := e.enrollToken(1)
	if _, err := Enroll(context.Background(), e.enrollOpts("first", tok)); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"reused": tok, "unknown": "lre_not-a-token-0123456789"} {
		t.Run(name, func(t *testing.T) {
			o := e.enrollOpts(name, token)
			_, err := Enroll(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), "refused the enrollment token") || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("error %v; want one saying the token was refused and nothing written", err)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the token: %v", err)
			}
			if _, err := os.Stat(filepath.Dir(o.DataDir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("something was written under %s (%v)", filepath.Dir(o.DataDir), err)
			}
		})
	}
}

func TestEnrollTwiceWithTheSameProvisionerKeepsTheMachineAndTheToken(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := e.enrollOpts("twice", e.enrollToken(1))
	first, err := Enroll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	spare := e.enrollToken(1)
	o.Token = spare
	again, err := Enroll(context.Background(), o)
	if err != nil || !again.AlreadyEnrolled || again.MachineID != first.MachineID {
		t.Fatalf("second enroll: %+v, %v; want already enrolled as %s", again, err, first.MachineID)
	}
	// The spare token was not spent: it still enrols another machine.
	if _, err := Enroll(context.Background(), e.enrollOpts("other", spare)); err != nil {
		t.Errorf("the token given to an enrolled machine was spent: %v", err)
	}
	// --force registers again, with a fresh machine token.
	o.Token, o.Force = e.enrollToken(1), true
	forced, err := Enroll(context.Background(), o)
	if err != nil || forced.AlreadyEnrolled {
		t.Fatalf("forced enroll: %+v, %v", forced, err)
	}
}

func TestEnrollRefusesAnotherProvisionersConfigWithoutForce(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := e.enrollOpts("moved", e.enrollToken(1))
	if err := os.MkdirAll(filepath.Dir(o.ConfigPath), 0o700); err != nil {
		t.Fatal(err)
	}
	old := "stateDir: " + o.DataDir + "\ntasksDir: " + o.DataDir + "/tasks\nrunner:\n  provisioner:\n    url: https://old-prov.example.com\n"
	if err := os.WriteFile(o.ConfigPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Enroll(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "old-prov.example.com") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("error %v; want one naming the other provisioner and --force", err)
	}
	if b, _ := os.ReadFile(o.ConfigPath); string(b) != old {
		t.Errorf("the config was changed:\n%s", b)
	}
}

func TestEnrollWithAnUnreachableProvisionerWritesNothing(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := e.enrollOpts("offline", "lre_whatever-0123456789")
	o.ProvisionerURL = "http://127.0.0.1:1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Enroll(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the provisioner at http://127.0.0.1:1") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(filepath.Dir(o.DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("something was written (%v)", err)
	}
}

func TestEnrollOptionsNameTheBadFlag(t *testing.T) {
	e := newLinkEnv(t, nil)
	for want, mod := range map[string]func(*EnrollOptions){
		"--provisioner is missing":    func(o *EnrollOptions) { o.ProvisionerURL = "" },
		"plain http":                  func(o *EnrollOptions) { o.ProvisionerURL = "http://prov.example.com" },
		"--token is missing":          func(o *EnrollOptions) { o.Token = " " },
		"--pool-hint":                 func(o *EnrollOptions) { o.PoolHint = "two words" },
		`--tag "a b"`:                 func(o *EnrollOptions) { o.Tags = map[string]string{"a b": "c"} },
		"must be absolute":            func(o *EnrollOptions) { o.DataDir = "relative/dir" },
		"--pool-hint \"p\" and --tag": func(o *EnrollOptions) { o.PoolHint, o.Tags = "p", map[string]string{PoolHintTag: "q"} },
	} {
		o := e.enrollOpts("bad", "lre_x-0123456789")
		mod(&o)
		if _, err := Enroll(context.Background(), o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want one containing %q", err, want)
		}
	}
}

func TestRemoveDataDeletesConfigStateAndTasks(t *testing.T) {
	e := newLinkEnv(t, nil)
	o := e.enrollOpts("gone", e.enrollToken(1))
	if _, err := Enroll(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.DataDir, "tasks", "leftover"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveData(o.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.ConfigPath, o.DataDir, filepath.Dir(o.ConfigPath)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (removed %v)", p, removed)
		}
	}
	if again, err := RemoveData(o.ConfigPath); err != nil || len(again) != 0 {
		t.Errorf("second RemoveData: %v, %v; want nothing to do", again, err)
	}
}

func TestRemoveDataRefusesARootDirectory(t *testing.T) {
	dir := testTempDir(t)
	cfg := filepath.Join(dir, "runner.yml")
	if err := os.WriteFile(cfg, []byte("stateDir: /\ntasksDir: /tmp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveData(cfg); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("error %v; want a refusal", err)
	}
}

// closedLoopbackURL is an http URL on 127.0.0.1 where nothing listens.
func closedLoopbackURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}
