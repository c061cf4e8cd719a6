package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/sqlutil"
	"github.com/labrunner/labrunner/internal/stdlog"

	"github.com/labrunner/labrunner/bridge"
)

func newServeCommand() *cobra.Command {
	var configPath string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "run one bridge instance (TC listener, BB listener, reflector, master API) until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usageError{errors.New("serve: --config is required: give the bridge's YAML config file")}
			}
			cfg, err := bridge.LoadConfig(configPath)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			stdlog.Route(cfg.Logger, slog.LevelDebug)
			sqlutil.RouteMySQLLog(cfg.Logger)
			return serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "bridge config file (YAML; see docs/bridge.md)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level")
	return cmd
}

func serve(ctx context.Context, cfg bridge.Config) error {
	b, err := bridge.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (listen in the config): %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	cfg.Logger.Info("bridge serving", "listen", ln.Addr().String(), "instance", cfg.InstanceID)
	runErr := b.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err := <-srvErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return runErr
}
