package pulse

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func init() {
	implementations = append(implementations, struct {
		name  string
		setup func(t *testing.T) impl
	}{"amqp", amqpImpl})
}

// amqpImpl dials a new connection for every connect call and deletes the
// test's exchanges and queues at cleanup through an admin connection.
func amqpImpl(t *testing.T) impl {
	u := testsvc.AMQPURL(t)
	var mu sync.Mutex
	var exchanges, queues []string
	t.Cleanup(func() {
		conn, err := amqp.Dial(u)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer func() { _ = conn.Close() }()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
		for _, e := range exchanges {
			if err := ch.ExchangeDelete(e, false, false); err != nil {
				t.Errorf("cleanup: delete exchange %s: %v", e, err)
				return
			}
		}
	})
	connect := func(t *testing.T) Bus {
		t.Helper()
		return dialTest(t, u)
	}
	return impl{
		name:    "amqp",
		connect: connect,
		fresh:   connect,
		exchange: func(*testing.T) string {
			e := "exchange/labrunner-test/v1/" + testsvc.Unique()
			mu.Lock()
			defer mu.Unlock()
			exchanges = append(exchanges, e)
			return e
		},
		queue: func(*testing.T) string {
			q := "queue/labrunner-test/" + testsvc.Unique()
			mu.Lock()
			defer mu.Unlock()
			queues = append(queues, q)
			return q
		},
	}
}

// dialTest dials the test broker, logging through the test, and closes the
// bus at cleanup.
func dialTest(t *testing.T, u string) *amqpBus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	bus, err := DialAMQP(ctx, u, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatalf("DialAMQP: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return bus.(*amqpBus)
}

// testWriter sends log lines to t.Log so they show only for failures.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// forceCloseConnections closes, from the broker's side, every connection the
// bus has open, as a broker restart or network cut would. It returns once
// rabbitmqctl has closed at least one.
func forceCloseConnections(t *testing.T, b *amqpBus) {
	t.Helper()
	b.mu.Lock()
	old := b.conn
	b.mu.Unlock()
	out, err := exec.Command("rabbitmqctl", "list_connections", "-q", "pid", "client_properties").Output()
	if err != nil {
		t.Fatalf("rabbitmqctl list_connections (the test needs rabbitmqctl and the right to run it): %v", err)
	}
	// Lines are "<pid>\t[...,{"connection_name","<name>"},...]".
	closed := 0
	for line := range strings.Lines(string(out)) {
		pid, props, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok || !strings.Contains(props, `{"connection_name","`+b.name+`"}`) {
			continue
		}
		if out, err := exec.Command("rabbitmqctl", "close_connection", pid, "test: forced close").CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl close_connection: %v: %s", err, out)
		}
		closed++
	}
	if closed == 0 {
		t.Fatalf("no broker connection named %s to close", b.name)
	}
	// Wait until the client has seen the close, so the test exercises the
	// reconnect rather than racing it.
	deadline := time.Now().Add(waitLimit)
	for !old.IsClosed() {
		if time.Now().After(deadline) {
			t.Fatal("client did not notice the forced close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
