package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/stdlog"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/runner"
)

func newRunCommand() *cobra.Command {
	var configPath string
	var verbose, waitConfig bool
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the machine's runner: checks, policies, control API and the agent (docs/config.md); as a service or in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAsServiceOr(ctx, cmd.ErrOrStderr(), func(ctx context.Context, out io.Writer) error {
				level := slog.LevelInfo
				if verbose {
					level = slog.LevelDebug
				}
				log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
				// Libraries' retry lines (client-go's "Error: …") are debug
				// detail: the agent logs each failure once, with its cause.
				stdlog.Route(log, slog.LevelDebug)
				if waitConfig {
					if err := waitForConfig(ctx, configPath, enrolPoll, log); err != nil {
						return nil // stopped before enrolment: a clean stop
					}
				}
				cfg, rcfg, err := runner.Load(configPath)
				var ce *agent.ConfigError
				if errors.As(err, &ce) {
					for _, p := range ce.Problems {
						fmt.Fprintln(out, p)
					}
					return exitError{code: 2}
				}
				if err != nil {
					return err
				}
				r, err := runner.New(cfg, rcfg, runner.Options{Version: version, Logger: log})
				if err != nil {
					return err
				}
				return r.Run(ctx)
			})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "agent configuration file (YAML, see docs/config.md)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level")
	cmd.Flags().BoolVar(&waitConfig, "wait-for-config", false, "wait for the configuration file to exist (the service definitions set it: installed before enrolment, the service waits instead of exiting)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// enrolPoll is how often a service that is not enrolled yet looks for its
// configuration.
const enrolPoll = 5 * time.Second

// waitForConfig returns once the configuration file exists, or ctx's
// error. The installers register the service before the machine is
// enrolled (an MDM may install first and enrol later): without this, the
// service would exit at every boot and the service manager restart it for
// ever. A file that exists but is wrong is Load's to report.
func waitForConfig(ctx context.Context, path string, poll time.Duration, log *slog.Logger) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	log.Warn("not enrolled yet: waiting for the configuration; run `runner enroll` (docs/install-windows.md, docs/install-macos.md)", "config", path)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				log.Info("configuration found: starting", "config", path)
				return nil
			}
		}
	}
}
