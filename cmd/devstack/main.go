// Command devstack runs labrunner's whole central side in one process for
// development, tests and the demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/sqlutil"
	"github.com/labrunner/labrunner/internal/stdlog"

	"github.com/labrunner/labrunner/internal/version"

	"github.com/labrunner/labrunner/devstack"
	tcstack "github.com/labrunner/labrunner/internal/devstack"
)

func main() {
	err := newRootCommand().Execute()
	var code exitCode
	switch {
	case err == nil:
	case errors.As(err, &code):
		os.Exit(int(code))
	default:
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "devstack",
		Short:         "labrunner's central services in one process, with a Taskcluster-compatible dev queue",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newDemoCommand(), newTaskCommand())
	return root
}

type stackFlags struct {
	listen, pulseURL, clientID, accessToken string
	dir, adminToken, builders               string
	workDir                                 string
	verbose                                 bool
}

func (f *stackFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to serve the root URL on (host:port; port 0 picks a free one)")
	cmd.Flags().StringVar(&f.pulseURL, "pulse", "", "RabbitMQ URL for Pulse messages (amqp://user:pass@host:5672); empty uses the in-process bus")
	cmd.Flags().StringVar(&f.clientID, "client-id", tcstack.DefaultClientID, "root client id")
	cmd.Flags().StringVar(&f.accessToken, "access-token", "", "root access token (generated when empty)")
	cmd.Flags().StringVar(&f.dir, "dir", "", "directory for the services' SQLite files (default: a temporary one, removed at exit)")
	cmd.Flags().StringVar(&f.adminToken, "admin-token", "", "provisioner admin token (generated when empty)")
	cmd.Flags().StringVar(&f.builders, "builders", "", "the bridge's builders.yaml (default: every builder accepted, no steps)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log at debug level")
}

func (f *stackFlags) options() devstack.Options {
	return devstack.Options{Stack: f.stackOptions(), Dir: f.dir, AdminToken: f.adminToken, BuildersFile: f.builders}
}

func (f *stackFlags) stackOptions() tcstack.Options {
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	stdlog.Route(logger, slog.LevelDebug)
	sqlutil.RouteMySQLLog(logger)
	return tcstack.Options{
		Listen:      f.listen,
		PulseURL:    f.pulseURL,
		ClientID:    f.clientID,
		AccessToken: f.accessToken,
		Logger:      logger,
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newServeCommand() *cobra.Command {
	var f stackFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "serve the dev queue (and the other central services) until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			s, err := devstack.Start(ctx, f.options())
			if err != nil {
				return err
			}
			devstack.PrintEnv(cmd.OutOrStdout(), s)
			<-ctx.Done()
			return s.Close()
		},
	}
	f.register(cmd)
	return cmd
}

func newDemoCommand() *cobra.Command {
	var f stackFlags
	var keep, short bool
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "run the whole system with three runners through a scripted scenario; exit 0 if every outcome was the expected one",
		Long: `Start the devstack and three in-process runners (lab-1, lab-2, lab-3),
apply a Buildbot pool and a Taskcluster pool, and play the scenario: a
bridge-routed build feeding native tests, a cancelled task, a failing
check that quarantines a machine until it is repaired, a reboot after N
tasks, and a move between pools on demand (docs/devstack.md). It prints a
progress line, a summary table and one machine's runner status, and exits
0 only if every outcome was the expected one. Logs go to demo.log in the
work directory unless -v sends them to standard error.

With --keep everything keeps running after the scenario until Ctrl-C; the
dashboard's URL and logins are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			opts := devstack.DemoOptions{System: f.options(), WorkDir: f.workDir, Keep: keep, Short: short}
			if !f.verbose {
				opts.System.Stack.Logger = nil
			}
			d, err := devstack.RunDemo(ctx, cmd.OutOrStdout(), opts)
			if err != nil {
				return err
			}
			if keep {
				<-ctx.Done()
				return d.Close()
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().Lookup("listen").DefValue = "127.0.0.1:0"
	_ = cmd.Flags().Set("listen", "127.0.0.1:0")
	cmd.Flags().StringVar(&f.workDir, "work-dir", "", "directory for the machines, their state and demo.log (default: a temporary one, removed at exit unless the demo failed)")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave everything running after the scenario and print the dashboard URL and logins")
	cmd.Flags().BoolVar(&short, "short", false, "the smaller graph (one test task per build)")
	return cmd
}
