package pulse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// dialTimeout bounds one TCP connect and AMQP handshake.
const dialTimeout = 10 * time.Second

// amqpBus is the RabbitMQ Bus. All publishers and consumers share one
// connection, which is re-dialled by whichever of them first finds it gone;
// each consumer has its own channel and the publishers share one confirm
// channel.
type amqpBus struct {
	url      string // holds the password: never log it, log redacted
	redacted string
	// name is the connection_name client property, which lets operators
	// (and the tests, through rabbitmqctl) tell this bus's connection apart.
	name   string
	config amqp.Config
	logger *slog.Logger

	mu     sync.Mutex
	conn   *amqp.Connection
	closed bool
	done   chan struct{}

	pub amqpPublisher
}

// DialAMQP connects to RabbitMQ at amqpURL (amqp:// or amqps://) and returns
// a Bus that follows Pulse conventions: durable topic exchanges declared on
// first use, persistent JSON messages with publisher confirms, CC routing
// keys in the "CC" header, durable named queues with manual acknowledgement.
// It retries the first connection until ctx is done and fails at once for a
// bad URL or refused credentials. Once connected, publishers and consumers
// reconnect by themselves after broker failures, logging each attempt to
// logger (nil means slog.Default()) with the URL's password redacted.
func DialAMQP(ctx context.Context, amqpURL string, logger *slog.Logger) (Bus, error) {
	if logger == nil {
		logger = slog.Default()
	}
	redacted := redactURL(amqpURL)
	if _, err := amqp.ParseURI(amqpURL); err != nil {
		return nil, fmt.Errorf("pulse: AMQP URL %s is invalid (want amqp://user:password@host:port/vhost): %w", redacted, err)
	}
	name := "labrunner-pulse-" + randomHex()
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	b := &amqpBus{
		url:      amqpURL,
		redacted: redacted,
		name:     name,
		config:   amqp.Config{Heartbeat: 10 * time.Second, Properties: props, Dial: amqp.DefaultDial(dialTimeout)},
		logger:   logger,
		done:     make(chan struct{}),
	}
	err := retryBroker(ctx, logger, defaultReconnectMax, "connecting to RabbitMQ", []any{"url", redacted}, func() error {
		_, err := b.connection()
		return err
	})
	switch {
	case err == nil:
		return b, nil
	case permanent(err):
		return nil, err
	}
	return nil, fmt.Errorf("pulse: gave up connecting: %w", err)
}

// connection returns the open connection, dialling a new one if the last
// has closed. Holding mu while dialling makes concurrent callers share one
// new connection instead of racing to open several.
func (b *amqpBus) connection() (*amqp.Connection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.conn != nil && !b.conn.IsClosed() {
		return b.conn, nil
	}
	// DialConfig copies the config and fills SASL from the URL each time;
	// that matters because amqp091 zeroes the password in SASL after use.
	conn, err := amqp.DialConfig(b.url, b.config)
	if err != nil {
		return nil, fmt.Errorf("pulse: connect to %s: %w", b.redacted, err)
	}
	reconnect := b.conn != nil
	b.conn = conn
	if reconnect {
		b.logger.Info("pulse: reconnected to RabbitMQ", "url", b.redacted)
	}
	return conn, nil
}

func (b *amqpBus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close closes the connection; running Consume calls return ErrClosed.
func (b *amqpBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.done)
	if b.conn == nil || b.conn.IsClosed() {
		return nil
	}
	if err := b.conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("pulse: close connection to %s: %w", b.redacted, err)
	}
	return nil
}

// permanent reports whether err is one that retrying cannot fix: refused
// credentials or permissions, a vhost the user may not use, or a
// declaration that conflicts with an existing exchange or queue.
func permanent(err error) bool {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case amqp.AccessRefused, amqp.NotAllowed, amqp.PreconditionFailed:
		return true
	}
	return false
}

// redactURL hides the password of an AMQP URL for logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// An unparseable URL may still contain a password; show nothing.
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// randomHex returns 12 random hex digits for consumer tags and connection
// names.
func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
