package pulse

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func TestFitDeadlineMakesTheLastAttemptBeforeTheDeadline(t *testing.T) {
	if d, last := fitDeadline(context.Background(), 20*time.Second); d != 20*time.Second || last {
		t.Errorf("without a deadline: %s, last %v; want the delay unchanged", d, last)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, last := fitDeadline(ctx, time.Second); d != time.Second || last {
		t.Errorf("delay well before the deadline: %s, last %v; want it unchanged", d, last)
	}
	d, last := fitDeadline(ctx, 20*time.Second)
	if !last || d > 10*time.Second-lastTryMargin || d < 9*time.Second-lastTryMargin {
		t.Errorf("delay past the deadline: %s, last %v; want about %s and last", d, last, 10*time.Second-lastTryMargin)
	}
	short, cancelShort := context.WithTimeout(context.Background(), lastTryMargin/2)
	defer cancelShort()
	if d, last := fitDeadline(short, time.Second); d != 0 || !last {
		t.Errorf("deadline within the margin: %s, last %v; want 0 and last", d, last)
	}
}

// TestAMQPPublishReachesABrokerBackBeforeTheDeadline cuts the broker off
// (a proxy in front of it stops listening), publishes with a 2.5 s context,
// and lets the broker back after 1.2 s: the publish must get through rather
// than sleep past the deadline.
func TestAMQPPublishReachesABrokerBackBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	im := amqpImpl(t)
	u := testsvc.AMQPURL(t)
	ex := im.exchange(t)
	c := startConsumer(t, im.connect(t), ConsumeOptions{Queue: im.queue(t), Prefetch: 1}, Binding{ex, "k"})
	target, _ := url.Parse(u)
	p := startProxy(t, target.Host)
	via := *target
	via.Host = p.addr
	pub := dialTest(t, via.String())
	publish(t, pub, ex, "k", "first")
	if body := c.nextAcked(t); body != "first" {
		t.Fatalf("got %q", body)
	}
	p.down()
	time.AfterFunc(1200*time.Millisecond, func() { p.up(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := pub.Publish(ctx, Outgoing{Exchange: ex, RoutingKey: "k", Body: []byte("second")}); err != nil {
		t.Fatalf("publish while the broker was away for 1.2 s of 2.5 s: %v (after %s)", err, time.Since(began))
	}
	if body := c.nextAcked(t); body != "second" {
		t.Fatalf("got %q, want second", body)
	}
}

func TestAMQPPublishGivesUpAtTheDeadline(t *testing.T) {
	t.Parallel()
	u := testsvc.AMQPURL(t)
	target, _ := url.Parse(u)
	p := startProxy(t, target.Host)
	via := *target
	via.Host = p.addr
	pub := dialTest(t, via.String())
	p.down()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := pub.Publish(ctx, Outgoing{Exchange: "exchange/labrunner-test/v1/" + testsvc.Unique(), RoutingKey: "k", Body: []byte(`{}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to an unreachable broker: %v, want a deadline error", err)
	}
}

// proxy forwards TCP connections to a broker and can be taken down (its
// listener closed and its connections cut) and brought up again on the same
// address.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	p.up(t)
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up(t *testing.T) {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("proxy listen on %s: %v", addr, err)
		return
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); _ = b.Close() }()
			go func() { _, _ = io.Copy(c, b); _ = c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
