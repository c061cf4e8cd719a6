package testsvc

import (
	"context"
	"database/sql"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// restart stops a server with stop, starts it again and logs how long each
// took.
func restart(t *testing.T, what string, stop, start func() error) {
	t.Helper()
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	stopped := time.Now()
	if err := start(); err != nil {
		t.Fatalf("%s: start again: %v", what, err)
	}
	t.Logf("%s: stopped in %s, started again in %s", what, stopped.Sub(began).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
}

func TestPrivateMariaDBKeepsCommittedRowsOverRestartAndCrash(t *testing.T) {
	m := StartPrivateMariaDB(t)
	dsn := m.Database(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec("CREATE TABLE t (x INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		stop func() error
	}{{"SIGTERM", m.Stop}, {"SIGKILL", m.Kill}} {
		restart(t, step.name, step.stop, m.Start)
		// The pool's old connections are dead; database/sql dials anew.
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
			t.Fatalf("after %s: %v", step.name, err)
		}
		if n != 1 {
			t.Fatalf("after %s: %d rows, want 1", step.name, n)
		}
	}
	if err := m.Start(); err == nil {
		t.Fatal("Start of a running server succeeded")
	}
}

func TestPrivateRabbitMQKeepsPersistentMessagesOverRestartAndCrash(t *testing.T) {
	r := StartPrivateRabbitMQ(t)
	if r.URL() == AMQPURL(t) {
		t.Fatal("private node has the shared node's URL")
	}
	const queue = "private-test"
	publish := func(body string) {
		t.Helper()
		conn, err := amqp.Dial(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
	get := func() string {
		t.Helper()
		conn, err := amqp.Dial(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("get from %s: ok %v, %v", queue, ok, err)
		}
		return string(d.Body)
	}
	for _, step := range []struct {
		name string
		stop func() error
	}{{"SIGTERM", r.Stop}, {"SIGKILL", r.Kill}} {
		publish("before " + step.name)
		restart(t, step.name, step.stop, r.Start)
		if got := get(); got != "before "+step.name {
			t.Fatalf("after %s got %q", step.name, got)
		}
	}
}
