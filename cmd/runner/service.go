package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/runner"
)

func newServiceCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:       "service install|uninstall|start|stop|restart|status",
		Short:     "Manage the runner as an OS service (Windows service, LaunchDaemon, systemd unit); see docs/operations.md",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: runner.ServiceActions,
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := runner.ControlService(args[0], configPath)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", platform.DefaultConfigPath(), "configuration file the service runs with")
	return cmd
}

// runAsServiceOr runs the runner under the OS service manager if it
// started this process, else in the foreground until ctx ends.
func runAsServiceOr(ctx context.Context, r *runner.Runner) error {
	name := platform.ServiceName()
	isService, err := platform.RunAsService(name, func(ctx context.Context) error {
		// A service's standard error goes nowhere on Windows.
		if w, err := platform.ServiceLog(name); err == nil && w != nil {
			defer w.Close()
			r.SetLogOutput(w)
		}
		return r.Run(ctx)
	})
	if isService {
		return err
	}
	return r.Run(ctx)
}
