package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/stdlog"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/runner"
)

func newRunCommand() *cobra.Command {
	var configPath string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the machine's runner: checks, policies, control API and the agent (docs/config.md); as a service or in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, rcfg, err := runner.Load(configPath)
			var ce *agent.ConfigError
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p)
				}
				return exitError{code: 2}
			}
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			// Libraries' retry lines (client-go's "Error: …") are debug
			// detail: the agent logs each failure once, with its cause.
			stdlog.Route(log, slog.LevelDebug)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := runner.New(cfg, rcfg, runner.Options{Version: version, Logger: log})
			if err != nil {
				return err
			}
			return runAsServiceOr(ctx, r)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "agent configuration file (YAML, see docs/config.md)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
