package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/runner"
)

func newServiceCommand() *cobra.Command {
	var configPath string
	var ifConfigured bool
	cmd := &cobra.Command{
		Use:   "service install|configure|uninstall|start|stop|restart|status",
		Short: "Manage the runner as an OS service (Windows service, LaunchDaemon, systemd unit); see docs/operations.md",
		Long: `Manage the runner as an OS service. Run it elevated (Administrator on
Windows, root elsewhere). "install" registers the runner with the OS:

  Windows   service "labrunner" as LocalSystem, delayed automatic start,
            restart on failure after 10 s, 30 s, then every 60 s, also on an
            error exit; logs to the Application event log (source labrunner)
            runner.exe service install --config C:\ProgramData\labrunner\runner.yml
  macOS     LaunchDaemon /Library/LaunchDaemons/org.labrunner.runner.plist
            (starts at boot without a login, RunAtLoad and KeepAlive);
            logs in /Library/Logs/labrunner/
            sudo runner service install --config "/Library/Application Support/labrunner/runner.yml"
  Linux     systemd unit /etc/systemd/system/labrunner.service (Restart=always,
            and Delegate=yes in a drop-in: a cgroup per task), or a SysV
            init script where systemd is not PID 1
            sudo runner service install --config /etc/labrunner/runner.yml

"configure" applies the settings above to a service an installer
registered (the MSI does, since it cannot express them itself).
"uninstall" removes the registration (config and state stay); "start",
"stop", "restart" and "status" ask the service manager. "runner status"
shows what the runner itself is doing.`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: runner.ServiceActions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ifConfigured && args[0] == "start" {
				if _, err := os.Stat(configPath); errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: not started: %s does not exist yet; enrol with `runner enroll`, then `runner service start`\n", platform.ServiceName(), configPath)
					return nil
				}
			}
			msg, err := runner.ControlService(args[0], configPath)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", platform.DefaultConfigPath(), "configuration file the service runs with")
	cmd.Flags().BoolVar(&ifConfigured, "if-configured", false, "with start: do nothing when the configuration file does not exist yet (the MSI starts the service so)")
	return cmd
}

// runAsServiceOr runs body under the OS service manager if it started
// this process, else in the foreground until ctx ends. body logs to out:
// standard error, or the service's log (a service's standard error goes
// nowhere on Windows).
func runAsServiceOr(ctx context.Context, stderr io.Writer, body func(ctx context.Context, out io.Writer) error) error {
	name := platform.ServiceName()
	isService, err := platform.RunAsService(name, func(ctx context.Context) error {
		out := stderr
		if w, err := platform.ServiceLog(name); err == nil && w != nil {
			defer w.Close()
			out = w
		}
		return body(ctx, out)
	})
	if isService {
		return err
	}
	return body(ctx, stderr)
}
