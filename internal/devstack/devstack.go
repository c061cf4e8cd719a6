// Package devstack runs the whole of labrunner's central side in one process
// under one root URL: the Taskcluster-compatible dev queue and purge-cache
// service (and, as they land, the provisioner and the bridge), on the
// in-process Pulse bus or on RabbitMQ. It serves `devstack serve`,
// `make demo` and end-to-end tests.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/internal/devpurgecache"
	"github.com/labrunner/labrunner/internal/devqueue"
	"github.com/labrunner/labrunner/internal/pulse"
)

// DefaultClientID is the root client's id, as in a Taskcluster deployment.
const DefaultClientID = "static/taskcluster/root"

// Options configures a stack; the zero value is a working embedded default.
type Options struct {
	// Listen is the TCP address to serve on (default 127.0.0.1:0, a free port).
	Listen string
	// PulseURL is a RabbitMQ URL; empty means the in-process bus.
	PulseURL string
	// ClientID and AccessToken are the root credentials; an empty token is
	// generated.
	ClientID, AccessToken string
	// Queue overrides dev queue settings (timeouts); RootURL, Clients,
	// RootClientID, Publisher and Logger are filled in by Start.
	Queue devqueue.Config
	// Logger receives the stack's logs (default slog.Default()).
	Logger *slog.Logger
	// Extensions add central services (provisioner, bridge) beside the
	// queue, in order, once the root URL, credentials and bus exist.
	Extensions []Extension
}

// Extension adds a service to a starting stack: it mounts its handlers on
// mux (paths beside /api/queue/v1/) and returns what runs in the
// background until the stack closes (nil for nothing). It lives here, not
// as an import of the services, so that their tests can use this package.
type Extension func(s *Stack, mux *http.ServeMux) (run func(ctx context.Context) error, err error)

// Stack is a running devstack.
type Stack struct {
	// RootURL is the Taskcluster root URL clients use.
	RootURL string
	// Credentials are the root client's credentials.
	Credentials tcclient.Credentials
	// Bus is the Pulse bus the stack publishes on.
	Bus pulse.Bus
	// Queue is the dev queue.
	Queue *devqueue.Server
	// PurgeCache is the purge-cache service.
	PurgeCache *devpurgecache.Server

	server *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// Start starts a stack and returns once it accepts requests.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.AccessToken == "" {
		token, err := NewAccessToken()
		if err != nil {
			return nil, err
		}
		opts.AccessToken = token
	}

	var bus pulse.Bus
	if opts.PulseURL == "" {
		bus = pulse.NewInProcess()
	} else {
		b, err := pulse.DialAMQP(ctx, opts.PulseURL, logger)
		if err != nil {
			return nil, fmt.Errorf("connect to Pulse (--pulse): %w", err)
		}
		bus = b
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		_ = bus.Close()
		return nil, fmt.Errorf("listen on %s (--listen): %w", opts.Listen, err)
	}
	rootURL := "http://" + ln.Addr().String()

	qcfg := opts.Queue
	qcfg.RootURL = rootURL
	qcfg.Clients = map[string]string{opts.ClientID: opts.AccessToken}
	qcfg.RootClientID = opts.ClientID
	qcfg.Publisher = bus
	qcfg.Logger = logger.With("component", "devqueue")
	queue, err := devqueue.New(qcfg)
	if err != nil {
		_ = ln.Close()
		_ = bus.Close()
		return nil, fmt.Errorf("dev queue: %w", err)
	}

	purge := devpurgecache.New(devpurgecache.Config{
		Clients: func(id string) (string, bool) {
			tok, ok := qcfg.Clients[id]
			return tok, ok
		},
		Now:    qcfg.Now,
		Logger: logger.With("component", "purge-cache"),
	})

	mux := http.NewServeMux()
	mux.Handle("/api/queue/v1/", queue.Handler())
	mux.Handle("/_devqueue/", queue.Handler())
	mux.Handle("/api/purge-cache/v1/", purge.Handler())
	// Where Taskcluster's web UI shows a task, the dev queue has no UI:
	// links made for a real deployment (the provisioner's dashboard) lead
	// to the task's status instead.
	mux.HandleFunc("GET /tasks/{taskId}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/queue/v1/task/"+url.PathEscape(r.PathValue("taskId"))+"/status", http.StatusSeeOther)
	})

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Stack{
		RootURL:     rootURL,
		Credentials: tcclient.Credentials{ClientID: opts.ClientID, AccessToken: opts.AccessToken},
		Bus:         bus,
		Queue:       queue,
		PurgeCache:  purge,
		server:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		cancel:      cancel,
	}
	for i, extend := range opts.Extensions {
		run, err := extend(s, mux)
		if err != nil {
			cancel()
			s.wg.Wait()
			_ = ln.Close()
			_ = bus.Close()
			return nil, fmt.Errorf("devstack extension %d: %w", i, err)
		}
		if run != nil {
			s.goRun(fmt.Sprintf("extension %d", i), func() error { return run(runCtx) })
		}
	}
	s.goRun("devqueue resolvers", func() error { return queue.Run(runCtx) })
	s.goRun("http server", func() error {
		if err := s.server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	logger.Info("devstack started", "rootURL", rootURL, "clientId", opts.ClientID, "pulse", pulseName(opts.PulseURL))
	return s, nil
}

func (s *Stack) goRun(what string, f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			s.errMu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("%s: %w", what, err)
			}
			s.errMu.Unlock()
		}
	}()
}

// Close stops the stack: open requests get a few seconds to finish.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdownErr := s.server.Shutdown(ctx)
	if shutdownErr != nil {
		_ = s.server.Close()
	}
	s.cancel()
	s.wg.Wait()
	busErr := s.Bus.Close()
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.err, busErr)
}

// NewAccessToken returns a random 44-character access token, the length and
// alphabet of Taskcluster's.
func NewAccessToken() (string, error) {
	b := make([]byte, 33)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate access token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func pulseName(u string) string {
	if u == "" {
		return "in-process"
	}
	return "amqp"
}

// PrintEnv prints the environment a Taskcluster client needs to reach s.
func PrintEnv(out io.Writer, s *Stack) {
	fmt.Fprintf(out, "TASKCLUSTER_ROOT_URL=%s\nTASKCLUSTER_CLIENT_ID=%s\nTASKCLUSTER_ACCESS_TOKEN=%s\n",
		s.RootURL, s.Credentials.ClientID, s.Credentials.AccessToken)
}
