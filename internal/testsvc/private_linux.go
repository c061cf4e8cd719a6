package testsvc

// Private, throw-away MariaDB and RabbitMQ servers for tests that must stop
// and start a server (a crash, a restart) without disturbing the machine's
// shared ones that other tests use in parallel. Each runs as a child process
// of the test on free loopback ports with its data in a temporary directory;
// stopping and starting again keeps that data, as a real restart would.
// A test using them skips when the server binaries are not installed
// (`make services` installs them).

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// startTimeout bounds one server start; RabbitMQ takes 5-25 s on a busy
// two-core machine.
const startTimeout = 90 * time.Second

// stopTimeout bounds a graceful stop before the process is killed.
const stopTimeout = 60 * time.Second

// PrivateMariaDB is a MariaDB server of the test's own.
type PrivateMariaDB struct {
	srv  *server
	port int
}

// StartPrivateMariaDB initialises a data directory, starts a MariaDB server
// on it (root without a password on 127.0.0.1) and removes both at cleanup.
func StartPrivateMariaDB(t testing.TB) *PrivateMariaDB {
	t.Helper()
	mariadbd := lookBinary(t, "MariaDB server", "mariadbd", "mysqld")
	install := lookBinary(t, "MariaDB installer", "mariadb-install-db", "mysql_install_db")
	dir := tempDir(t, "lr-mariadb-")
	data := filepath.Join(dir, "data")
	// Small InnoDB files keep the directory at a few tens of MB.
	common := []string{"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"}
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, user...)
	began := time.Now()
	if out, err := osexec.Command(install, append(args, common...)...).CombinedOutput(); err != nil {
		t.Fatalf("private MariaDB: %s failed: %v\n%s", install, err, tail(out))
	}
	t.Logf("private MariaDB: data directory initialised in %s", time.Since(began).Round(time.Millisecond))
	port := freePort(t)
	m := &PrivateMariaDB{port: port}
	argv := append([]string{mariadbd, "--no-defaults"}, user...)
	argv = append(argv, "--datadir="+data, "--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--socket="+filepath.Join(dir, "mysqld.sock"), "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--skip-name-resolve", "--performance-schema=OFF", "--max-connections=500")
	argv = append(argv, common...)
	m.srv = &server{name: "MariaDB", dir: dir, argv: argv, env: os.Environ(), ready: m.ping}
	startOrFail(t, m.srv)
	return m
}

// DSN is the server's go-sql-driver DSN without a database.
func (m *PrivateMariaDB) DSN() string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port)
}

// Database creates an empty database on the server and returns its DSN
// (parseTime and multiStatements on, as MySQL returns).
func (m *PrivateMariaDB) Database(t testing.TB) string {
	t.Helper()
	admin := open(t, "mysql", m.DSN())
	defer func() { _ = admin.Close() }()
	name := "lrtest_" + Unique()
	exec(t, admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
	return m.DSN() + name + "?parseTime=true&multiStatements=true"
}

// Stop shuts the server down (SIGTERM) and waits for it to exit.
func (m *PrivateMariaDB) Stop() error { return m.srv.stop(syscall.SIGTERM) }

// Kill crashes the server (SIGKILL) and waits for it to exit.
func (m *PrivateMariaDB) Kill() error { return m.srv.stop(syscall.SIGKILL) }

// Start starts the stopped server again on the same data and port and
// waits until it answers queries.
func (m *PrivateMariaDB) Start() error { return m.srv.start() }

func (m *PrivateMariaDB) ping(ctx context.Context) error {
	db, err := sql.Open("mysql", m.DSN()+"?timeout=2s")
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return db.PingContext(ctx)
}

// PrivateRabbitMQ is a RabbitMQ node of the test's own, with no plugins and
// the default guest user (allowed from loopback).
type PrivateRabbitMQ struct {
	srv  *server
	port int
}

// StartPrivateRabbitMQ starts a RabbitMQ node with its own node name, ports,
// database and Erlang cookie and removes it at cleanup. It shares only epmd
// with the machine's node.
func StartPrivateRabbitMQ(t testing.TB) *PrivateRabbitMQ {
	t.Helper()
	bin := rabbitServerScript(t)
	dir := tempDir(t, "lr-rabbitmq-")
	port, dist := freePort(t), freePort(t)
	files := map[string]string{
		"rabbitmq.conf":     fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\n", port),
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatalf("private RabbitMQ: %v", err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		// The machine's settings (/etc/rabbitmq, RABBITMQ_* of the caller)
		// must not leak into the private node.
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "ERL_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+dir, // the node's own Erlang cookie
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_NODENAME=lrtest-"+Unique()+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
		// With input allowed the script execs the Erlang VM instead of
		// running it under a signal-forwarding shell, so the child is the
		// VM itself: SIGTERM stops it cleanly, SIGKILL crashes it, and it
		// dies with the test. -noinput keeps the shell off all the same.
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput",
	)
	r := &PrivateRabbitMQ{port: port}
	r.srv = &server{name: "RabbitMQ", dir: dir, argv: []string{bin}, env: env, ready: r.dial}
	startOrFail(t, r.srv)
	return r
}

// URL is the node's AMQP URL (guest/guest, default vhost).
func (r *PrivateRabbitMQ) URL() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.port)
}

// Stop shuts the node down (SIGTERM) and waits for it to exit.
func (r *PrivateRabbitMQ) Stop() error { return r.srv.stop(syscall.SIGTERM) }

// Kill crashes the node (SIGKILL) and waits for it to exit.
func (r *PrivateRabbitMQ) Kill() error { return r.srv.stop(syscall.SIGKILL) }

// Start starts the stopped node again on the same database and ports and
// waits until it accepts AMQP connections; durable queues and their
// persistent messages are back.
func (r *PrivateRabbitMQ) Start() error { return r.srv.start() }

func (r *PrivateRabbitMQ) dial(context.Context) error {
	conn, err := amqp.DialConfig(r.URL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// rabbitServerScript finds RabbitMQ's own start script; Debian's
// /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user
// and the machine's directories.
func rabbitServerScript(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/lib/rabbitmq/bin/rabbitmq-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := osexec.LookPath("rabbitmq-server")
	if err != nil {
		t.Skip("private RabbitMQ: rabbitmq-server is not installed; run `make services` (scripts/ensure-services.sh)")
	}
	if real, err := filepath.EvalSymlinks(p); err == nil && filepath.Base(real) == "rabbitmq-script-wrapper" {
		return filepath.Join(filepath.Dir(real), "rabbitmq-server")
	}
	return p
}

// server is one restartable server process.
type server struct {
	name  string
	dir   string
	argv  []string
	env   []string
	ready func(context.Context) error

	mu     sync.Mutex
	cmd    *osexec.Cmd
	exited chan struct{}
}

// start runs the process and waits until ready succeeds, failing early when
// the process exits.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("private %s: already running", s.name)
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("private %s: %w", s.name, err)
	}
	defer func() { _ = logFile.Close() }()
	cmd := osexec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, s.env, logFile, logFile
	// Its own process group so that a kill reaches its helpers; killed
	// with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("private %s: start %s: %w", s.name, s.argv[0], err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		err := s.ready(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("private %s exited while starting (%s); log %s:\n%s", s.name, cmd.ProcessState, s.logPath(), s.logTail())
		case <-ctx.Done():
			s.killLocked()
			return fmt.Errorf("private %s not ready within %s (%v); log %s:\n%s", s.name, startTimeout, err, s.logPath(), s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends sig to the server and waits for it to exit, killing its
// process group if it has not after stopTimeout.
func (s *server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("private %s: not running", s.name)
	}
	target := s.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		target = -target // the whole group, as a machine crash would
	}
	if err := syscall.Kill(target, sig); err != nil {
		return fmt.Errorf("private %s: signal %v: %w", s.name, sig, err)
	}
	select {
	case <-s.exited:
		s.cmd = nil
		return nil
	case <-time.After(stopTimeout):
		s.killLocked()
		return fmt.Errorf("private %s did not stop within %s of %v; killed", s.name, stopTimeout, sig)
	}
}

// killLocked kills the process group and waits; the caller holds mu.
func (s *server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (s *server) logPath() string { return filepath.Join(s.dir, "server.log") }

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	return tail(b)
}

// startOrFail starts srv for the first time and kills it at cleanup,
// logging the end of its log when the test failed.
func startOrFail(t testing.TB, srv *server) {
	t.Helper()
	began := time.Now()
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("private %s started in %s (%s)", srv.name, time.Since(began).Round(time.Millisecond), srv.dir)
	t.Cleanup(func() {
		srv.mu.Lock()
		srv.killLocked()
		srv.mu.Unlock()
		if t.Failed() {
			t.Logf("private %s log:\n%s", srv.name, srv.logTail())
		}
	})
}

// lookBinary finds the first of names on PATH or in the sbin directories,
// skipping the test when none is installed.
func lookBinary(t testing.TB, what string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := osexec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
			if p := filepath.Join(d, n); isExecutable(p) {
				return p
			}
		}
	}
	t.Skipf("private %s: none of %s is installed; run `make services` (scripts/ensure-services.sh)", what, strings.Join(names, ", "))
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// tempDir makes a directory removed at cleanup; not t.TempDir, whose long
// names can exceed the 108-byte limit of a Unix socket path.
func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// tail returns the last 3 000 bytes of b.
func tail(b []byte) string {
	const n = 3000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
