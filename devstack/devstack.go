// Package devstack is labrunner's whole central side in one process under
// one root URL, for `devstack serve`, `make demo` and end-to-end tests: the
// Taskcluster-compatible dev queue and Pulse (package internal/devstack),
// the provisioner on SQLite under /api/v1/, one Buildbot Bridge on SQLite
// and the same bus (its master API under /api/v1/master/), and the demo
// (three in-process runners played through a scenario, demo.go). Unlike
// internal/devstack it imports the services, so their own tests cannot use
// it; they use internal/devstack.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labrunner/labrunner/bridge"
	tcstack "github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/provisioner"
)

// Options configures a System; the zero value is a working embedded default.
type Options struct {
	// Stack configures the queue side: listen address, Pulse URL, root
	// credentials, queue timings.
	Stack tcstack.Options
	// Dir holds the services' SQLite files; empty means a temporary
	// directory removed by Close.
	Dir string
	// AdminToken is the provisioner's admin token; generated when empty.
	AdminToken string
	// BuildersFile is the bridge's builders.yaml (what agents run for each
	// Buildbot builder); empty accepts every builder name with no steps.
	BuildersFile string
	// AssignInterval and MoveInterval tune the provisioner's assigner
	// (its period, and the least time between two moves of a machine);
	// zero keeps the provisioner's defaults. The demo shortens both so
	// that a move happens within seconds.
	AssignInterval, MoveInterval time.Duration
	// HistoryInterval is how often the provisioner samples the dashboard's
	// history; zero keeps its default (1 min). The dashboard's browser
	// tests shorten it so that a short run draws charts.
	HistoryInterval time.Duration
}

// System is a running devstack.
type System struct {
	*tcstack.Stack
	// Provisioner is the provisioner served under /api/v1/.
	Provisioner *provisioner.Server
	// AdminToken is the provisioner's admin token.
	AdminToken string
	// Bridge is the Buildbot Bridge, listening for tasks of the
	// provisionerId/workerType buildbot-bridge/buildbot-bridge.
	Bridge *bridge.Bridge

	removeDir string
}

// Start starts the queue, the provisioner and the bus, and returns once
// they accept requests.
func Start(ctx context.Context, opts Options) (*System, error) {
	sys := &System{AdminToken: opts.AdminToken}
	if sys.AdminToken == "" {
		token, err := tcstack.NewAccessToken()
		if err != nil {
			return nil, err
		}
		sys.AdminToken = token
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "labrunner-devstack-")
		if err != nil {
			return nil, fmt.Errorf("devstack directory: %w", err)
		}
		dir, sys.removeDir = d, d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack directory (--dir): %w", err)
	}
	logger := opts.Stack.Logger
	if logger == nil {
		logger = slog.Default()
	}

	stackOpts := opts.Stack
	stackOpts.Extensions = append(stackOpts.Extensions, func(s *tcstack.Stack, mux *http.ServeMux) (func(context.Context) error, error) {
		b, err := bridge.New(ctx, bridge.Config{
			InstanceID:   "devstack",
			Taskcluster:  bridge.TaskclusterConfig{RootURL: s.RootURL, ClientID: s.Credentials.ClientID, AccessToken: s.Credentials.AccessToken},
			BBBDB:        bridge.DBConfig{Dialect: "sqlite", DSN: filepath.Join(dir, "bridge.sqlite")},
			SchedulerDB:  bridge.DBConfig{Dialect: "sqlite", DSN: filepath.Join(dir, "schedulerdb.sqlite")},
			BuildersFile: opts.BuildersFile,
			Bus:          s.Bus,
			Logger:       logger,
		})
		if err != nil {
			return nil, err
		}
		sys.Bridge = b
		h := b.Handler()
		mux.Handle("/api/v1/master/", h)
		mux.Handle("/api/v1/status", h)
		mux.Handle("/bridge/", http.StripPrefix("/bridge", h))
		return func(ctx context.Context) error {
			defer b.Close()
			return b.Run(ctx)
		}, nil
	}, func(s *tcstack.Stack, mux *http.ServeMux) (func(context.Context) error, error) {
		creds := s.Credentials
		p, err := provisioner.New(provisioner.Config{
			DB:                 filepath.Join(dir, "provisioner.sqlite"),
			RootURL:            s.RootURL,
			DefaultCredentials: &creds,
			AdminTokens:        []string{sys.AdminToken},
			Pulse:              s.Bus,
			BuildbotDemand:     bridgeDemand{sys},
			// The bridge is mounted under /bridge/ on the same listener:
			// the system map and the why page ask it there.
			Bridges:         []provisioner.BridgeEndpoint{{Name: "devstack", URL: s.RootURL + "/bridge"}},
			AssignInterval:  opts.AssignInterval,
			MoveInterval:    opts.MoveInterval,
			HistoryInterval: opts.HistoryInterval,
			Logger:          logger.With("component", "provisioner"),
		})
		if err != nil {
			return nil, err
		}
		sys.Provisioner = p
		mux.Handle("/api/v1/", p.Handler())
		mux.Handle("/openapi.json", p.Handler())
		mux.Handle("/metrics", p.Handler())
		mux.Handle("/dashboard", p.Handler())
		mux.Handle("/dashboard/", p.Handler())
		return func(ctx context.Context) error {
			defer p.Close()
			return p.Run(ctx)
		}, nil
	})
	stack, err := tcstack.Start(ctx, stackOpts)
	if err != nil {
		sys.cleanup()
		return nil, err
	}
	sys.Stack = stack
	return sys, nil
}

// bridgeDemand counts the bridge's pending build requests for the
// provisioner's Buildbot pools.
type bridgeDemand struct{ sys *System }

// PendingRequests sums the pending build requests of builders.
func (d bridgeDemand) PendingRequests(ctx context.Context, builders []string) (int64, error) {
	pending, err := d.sys.Bridge.SchedulerDB().PendingByBuilder(ctx)
	if err != nil {
		return 0, fmt.Errorf("pending build requests: %w", err)
	}
	var n int64
	for _, b := range builders {
		n += int64(pending[b])
	}
	return n, nil
}

// Close stops every service and removes a temporary directory.
func (s *System) Close() error {
	err := s.Stack.Close()
	return errors.Join(err, s.cleanup())
}

func (s *System) cleanup() error {
	if s.removeDir == "" {
		return nil
	}
	return os.RemoveAll(s.removeDir)
}

// PrintEnv prints what clients need to reach s: the Taskcluster root URL
// and credentials, and the provisioner's URL and admin token.
func PrintEnv(out io.Writer, s *System) {
	tcstack.PrintEnv(out, s.Stack)
	fmt.Fprintf(out, "LABRUNNER_PROVISIONER_URL=%s\nLABRUNNER_PROVISIONER_TOKEN=%s\n", s.RootURL, s.AdminToken)
}
