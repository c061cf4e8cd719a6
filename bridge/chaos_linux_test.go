package bridge

// The chaos test: three bridge instances on the same queues and databases,
// one killed and restarted again and again, every delivery possibly
// duplicated and delayed (so reordered), and, on the real services, the
// bridges' own RabbitMQ connections force-closed and their MariaDB
// connections killed. The shared RabbitMQ and MariaDB themselves are not
// restarted (other tests on this machine use them); the subtest
// mariadb-rabbitmq-restarts (chaos_restart_linux_test.go) restarts and
// crashes private ones.
//
// LABRUNNER_CHAOS_TASKS sets the number of tasks (default 300).

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labrunner/labrunner/bridge/client"
	"github.com/labrunner/labrunner/bridge/store"
	"github.com/labrunner/labrunner/internal/pulse"
)

// chaosBus duplicates and delays deliveries.
type chaosBus struct {
	pulse.Bus
	dupP     float64
	delayMax time.Duration
	dups     atomic.Int64
}

func (c *chaosBus) Consume(ctx context.Context, opts pulse.ConsumeOptions, bindings []pulse.Binding, h pulse.Handler) error {
	return c.Bus.Consume(ctx, opts, bindings, func(ctx context.Context, d pulse.Delivery) {
		if rand.Float64() < c.dupP {
			c.dups.Add(1)
			cp := pulse.NewDelivery(d.Exchange, d.RoutingKey, d.Body, true, d.Headers, func() error { return nil }, func(bool) error { return nil })
			go func() {
				time.Sleep(rand.N(4 * c.delayMax))
				h(ctx, cp)
			}()
		}
		time.Sleep(rand.N(c.delayMax))
		h(ctx, d)
	})
}

// Close leaves the shared bus open; instances own only their wrapper.
func (c *chaosBus) Close() error { return nil }

func chaosTasks() int {
	if n, err := strconv.Atoi(os.Getenv("LABRUNNER_CHAOS_TASKS")); err == nil && n > 0 {
		return n
	}
	return 300
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	forEachSetup(t, func(t *testing.T, s setup) { runChaos(t, s, chaosTasks()) })
	t.Run("mariadb-rabbitmq-restarts", func(t *testing.T) { runChaosRestarts(t, chaosRestartTasks()) })
}

func runChaos(t *testing.T, s setup, nTasks int) {
	c := newChaosRun(t, s, envOpts{})
	c.startAgents()

	// Chaos: kill and restart the victim, close AMQP connections, kill DB
	// connections, while the tasks are created.
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		for k := 0; ; k++ {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(time.Duration(400+rand.IntN(600)) * time.Millisecond):
			}
			if c.kills.Load() >= 6 {
				return
			}
			c.restartVictim(func() {
				if s.real && k%2 == 0 {
					closeOwnAMQPConnections(t)
					killOwnDBConnections(t, c.e)
				}
			})
		}
	}()
	c.createTasks(nTasks, 0)
	t.Logf("created %d tasks in %s", nTasks, time.Since(c.began))
	<-chaosDone
	t.Logf("chaos over after %s", time.Since(c.began))
	c.verify()
}

// chaosRun is one chaos run: the environment, its three instances (two
// stable, one victim), the agents and the tasks created.
type chaosRun struct {
	t      *testing.T
	s      setup
	e      *env
	ctx    context.Context
	cancel context.CancelFunc
	began  time.Time

	busesMu sync.Mutex
	buses   []*chaosBus

	stable1, stable2 *runningBridge
	victimMu         sync.Mutex
	stopVictim       func()
	kills            atomic.Int64

	retried    sync.Map
	finished   atomic.Int64
	agentsDone chan struct{}
	agents     sync.WaitGroup

	ids []string
}

// newChaosRun sets up the environment with the chaos settings (o may name
// other services) and starts the three instances.
func newChaosRun(t *testing.T, s setup, o envOpts) *chaosRun {
	// Claims last 30 s and are renewed 15 s before they end: a reflector
	// pass may take seconds on a loaded CI machine (300 tasks, -race), and
	// with 20 s claims the 5 s left let one expire (claim-expired) there.
	o.claimTimeout = 30 * time.Second
	o.mutate = func(c *Config) {
		c.Reflector.Interval = 500 * time.Millisecond
		c.Reflector.ReclaimThreshold = 15 * time.Second
		c.Reflector.UnboundAfter = 2 * time.Second
		c.Reflector.LostEventAfter = 5 * time.Second
		c.Retry = RetryConfig{Attempts: 12, Min: 50 * time.Millisecond, Max: time.Second}
		c.Pulse.Prefetch = 16
	}
	c := &chaosRun{t: t, s: s, e: newEnv(t, s, o), agentsDone: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.cancel)
	var stop1, stop2 func()
	c.stable1, stop1 = c.startInstance("chaos-1")
	t.Cleanup(stop1)
	c.stable2, stop2 = c.startInstance("chaos-2")
	t.Cleanup(stop2)
	_, c.stopVictim = c.startInstance("chaos-victim")
	t.Cleanup(func() {
		c.victimMu.Lock()
		defer c.victimMu.Unlock()
		c.stopVictim()
	})
	c.began = time.Now()
	return c
}

// newBus gives an instance its own bus: its own AMQP connection on the real
// setup, a wrapper of the in-process bus otherwise.
func (c *chaosRun) newBus() (*chaosBus, func()) {
	var inner pulse.Bus = c.e.stack.Bus
	closeInner := func() {}
	if c.s.real {
		dctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		b, err := pulse.DialAMQP(dctx, c.e.amqpURL, c.e.logger)
		if err != nil {
			c.t.Fatal(err)
		}
		inner, closeInner = b, func() { _ = b.Close() }
	}
	cb := &chaosBus{Bus: inner, dupP: 0.15, delayMax: 20 * time.Millisecond}
	c.busesMu.Lock()
	c.buses = append(c.buses, cb)
	c.busesMu.Unlock()
	return cb, closeInner
}

func (c *chaosRun) startInstance(id string) (*runningBridge, func()) {
	bus, closeBus := c.newBus()
	cfg := c.e.cfg
	cfg.Bus = bus
	cfg.InstanceID = id
	c.e.cfg = cfg
	rb := c.e.start()
	return rb, func() { rb.stop(); closeBus() }
}

// restartVictim kills the victim instance, runs meanwhile (if not nil)
// while it is down, and starts a new one.
func (c *chaosRun) restartVictim(meanwhile func()) {
	c.victimMu.Lock()
	defer c.victimMu.Unlock()
	c.stopVictim()
	c.kills.Add(1)
	if meanwhile != nil {
		meanwhile()
	}
	_, c.stopVictim = c.startInstance("chaos-victim")
}

// startAgents runs six agents on the stable instances: claim, heartbeat,
// finish; a request's first build ends RETRY one time in ten, other builds
// SUCCESS or FAILURE.
func (c *chaosRun) startAgents() {
	for i := range 6 {
		c.agents.Go(func() {
			cl := []*client.Client{c.stable1.client, c.stable2.client}[i%2]
			id := fmt.Sprintf("agent-%d", i)
			for {
				select {
				case <-c.agentsDone:
					return
				case <-c.ctx.Done():
					return
				default:
				}
				b, err := cl.Claim(c.ctx, client.ClaimRequest{WorkerID: id, Incarnation: "1", Builders: []string{goodBuilder, anotherBuilder}, Wait: 1})
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the bridge's database may be restarting
				}
				if err != nil || b == nil {
					continue
				}
				if rand.IntN(3) == 0 {
					_, _ = cl.Heartbeat(c.ctx, client.HeartbeatRequest{WorkerID: id, Incarnation: b.Incarnation, BuildID: b.BuildID})
				}
				time.Sleep(rand.N(30 * time.Millisecond))
				result := client.Success
				if _, loaded := c.retried.LoadOrStore(b.BuildRequestID, true); !loaded && rand.IntN(10) == 0 {
					result = client.Retry
				} else if rand.IntN(8) == 0 {
					result = client.Failure
				}
				// A real agent keeps reporting until the bridge answers.
				for attempt := 0; attempt < 300; attempt++ {
					_, err := cl.Finish(c.ctx, client.FinishRequest{WorkerID: id, Incarnation: b.Incarnation, BuildID: b.BuildID, Result: result})
					if err == nil {
						c.finished.Add(1)
						break
					}
					var ce *client.Error
					if errors.As(err, &ce) && ce.Status < 500 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
}

// createTasks creates n tasks, alternating between the two builders, with
// pause between them.
func (c *chaosRun) createTasks(n int, pause time.Duration) {
	for range n {
		builder := goodBuilder
		if len(c.ids)%2 == 1 {
			builder = anotherBuilder
		}
		c.ids = append(c.ids, c.e.createTask(payload(builder), nil))
		time.Sleep(pause)
	}
}

// verify checks that every task created is resolved, maps to exactly one
// build request, and is forgotten by the bridge.
func (c *chaosRun) verify() {
	t, e, ctx, ids := c.t, c.e, c.ctx, c.ids
	nTasks := len(ids)
	defer c.cancel()

	// Every task is resolved ...
	deadline := time.Now().Add(120 * time.Second)
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	for len(pending) > 0 {
		for id := range pending {
			st, err := e.q.Status(id)
			if err == nil && (st.Status.State == "completed" || st.Status.State == "failed") {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for id := range pending {
				st, _ := e.q.Status(id)
				row, rerr := e.st.GetTask(ctx, id)
				t.Logf("unresolved %s: %+v row %+v %v", id, st.Status.Runs, row, rerr)
				if errors.Is(rerr, store.ErrNotFound) {
					t.Logf("no instance ever handled a task-pending of %s; with LABRUNNER_TEST_LOG=1 look for the dev queue's %q (its outbox drops a message after 30 s of broker outage)",
						id, "publish failed; message dropped")
				}
				if rerr == nil && row.BuildRequestID != nil {
					br, _ := e.sdb.BuildRequest(ctx, *row.BuildRequestID)
					builds, _ := e.sdb.Builds(ctx, *row.BuildRequestID)
					t.Logf("request %+v builds %+v", br, builds)
				}
				c.logDeadLetters()
				break
			}
			t.Fatalf("%d of %d tasks unresolved", len(pending), nTasks)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all resolved after %s", time.Since(c.began))
	close(c.agentsDone)
	c.agents.Wait()

	// ... maps to exactly one build request ...
	counts := map[string]int{}
	rows, err := e.sdb.SQL().QueryContext(ctx, `SELECT bs.external_idstring, COUNT(*) FROM buildrequests br
		JOIN buildsets bs ON bs.id = br.buildsetid GROUP BY bs.external_idstring`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ext string
		var n int
		if err := rows.Scan(&ext, &n); err != nil {
			t.Fatal(err)
		}
		counts[strings.TrimPrefix(ext, "taskId:")] = n
	}
	_ = rows.Close()
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("task %s has %d build requests, want exactly 1", id, counts[id])
			rs, _ := e.sdb.SQL().QueryContext(ctx, `SELECT br.id, bs.submitted_at, br.complete, br.results, br.claimed_at FROM buildrequests br
				JOIN buildsets bs ON bs.id = br.buildsetid WHERE bs.external_idstring = ?`, "taskId:"+id)
			for rs != nil && rs.Next() {
				var brid, sub, complete, claimed int64
				var res sql.NullInt64
				_ = rs.Scan(&brid, &sub, &complete, &res, &claimed)
				t.Logf("  request %d submitted %d complete %d results %v claimed %d", brid, sub, complete, res, claimed)
			}
			st, _ := e.q.Status(id)
			for _, r := range st.Status.Runs {
				t.Logf("  run %d %s/%s scheduled %d (%s) created by %s", r.RunID, r.State, r.ReasonResolved, time.Time(r.Scheduled).Unix(), time.Time(r.Scheduled).Format(time.StampMilli), r.ReasonCreated)
			}
		}
	}
	if len(counts) != len(ids) {
		t.Errorf("%d tasks have build requests, want %d", len(counts), len(ids))
	}
	// ... and the bridge forgets it.
	emptyBy := time.Now().Add(20 * time.Second)
	for {
		list, err := e.st.List(ctx)
		if err == nil && len(list) == 0 {
			break
		}
		if time.Now().After(emptyBy) {
			for i, r := range list {
				if i == 3 {
					break
				}
				st, _ := e.q.Status(r.TaskID)
				t.Logf("left row %+v brid %v taken %v; runs %+v", r, deref(r.BuildRequestID), deref(r.TakenUntil), st.Status.Runs)
			}
			t.Fatalf("%d rows left in the tasks table, want none", len(list))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var dups int64
	c.busesMu.Lock()
	for _, b := range c.buses {
		dups += b.dups.Load()
	}
	c.busesMu.Unlock()
	var dead int64
	if st, err := c.stable1.b.status(ctx); err == nil {
		dead = st.DeadLetters
	}
	if dead > 0 {
		c.logDeadLetters()
	}
	t.Logf("%s: %d tasks, %d builds finished, %d duplicated deliveries, %d kills, %d dead letters", c.s.name, nTasks, c.finished.Load(), dups, c.kills.Load(), dead)
}

// logDeadLetters logs the latest dead letters.
func (c *chaosRun) logDeadLetters() {
	st, err := c.stable1.b.status(c.ctx)
	if err != nil {
		c.t.Logf("status: %v", err)
		return
	}
	for _, d := range st.LatestDead {
		c.t.Logf("dead letter: %+v", d)
	}
}

// closeOwnAMQPConnections force-closes, from the broker's side, the RabbitMQ
// connections of this test process only (found by local port), as a
// network cut would.
func closeOwnAMQPConnections(t *testing.T) {
	ports := ownPeerPorts(t, 5672)
	out, err := exec.Command("rabbitmqctl", "list_connections", "-q", "pid", "peer_port").Output()
	if err != nil {
		t.Fatalf("rabbitmqctl list_connections: %v", err)
	}
	closed := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || !ports[f[1]] {
			continue
		}
		if err := exec.Command("rabbitmqctl", "close_connection", f[0], "bridge chaos test").Run(); err == nil {
			closed++
		}
	}
	if closed == 0 {
		t.Log("no own AMQP connection found to close")
	}
}

// ownPeerPorts returns the local ports of this process's TCP connections to
// remotePort, read from /proc.
func ownPeerPorts(t *testing.T, remotePort int) map[string]bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		link, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[string]bool{}
	for _, file := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			_, rport, _ := strings.Cut(f[2], ":")
			_, lport, _ := strings.Cut(f[1], ":")
			rp, _ := strconv.ParseInt(rport, 16, 32)
			lp, _ := strconv.ParseInt(lport, 16, 32)
			if int(rp) == remotePort {
				ports[strconv.Itoa(int(lp))] = true
			}
		}
	}
	return ports
}

// killOwnDBConnections kills the MariaDB connections on the test's two
// databases, as a server-side drop would.
func killOwnDBConnections(t *testing.T, e *env) {
	db := e.sdb.SQL()
	var names []any
	for _, dsn := range []string{e.sdbDSN, e.storeDSN} {
		_, rest, _ := strings.Cut(dsn, ")/")
		name, _, _ := strings.Cut(rest, "?")
		names = append(names, name)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Logf("kill connections: %v", err)
		return
	}
	defer func() { _ = conn.Close() }()
	rows, err := conn.QueryContext(context.Background(), "SELECT ID FROM information_schema.PROCESSLIST WHERE DB IN (?, ?) AND ID <> CONNECTION_ID()", names...)
	if err != nil {
		t.Logf("kill connections: %v", err)
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	_ = rows.Close()
	for _, id := range ids {
		// A connection may have closed since the list was read.
		_, _ = conn.ExecContext(context.Background(), "KILL "+strconv.FormatInt(id, 10))
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
