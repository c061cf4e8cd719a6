package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	buildversion "github.com/labrunner/labrunner/internal/version"
	"github.com/labrunner/labrunner/runner"
)

// runnerCommands are the commands that talk to a running runner, plus
// version and service.
func runnerCommands() []*cobra.Command {
	return []*cobra.Command{
		newStatusCommand(), newDrainCommand(), newResumeCommand(), newQuarantineCommand(),
		newUnquarantineCommand(), newRebootCommand(), newCheckCommand(), newVersionCommand(), newServiceCommand(),
	}
}

// controlCommand builds a command that calls the control API and prints
// the resulting status.
func controlCommand(use, short string, call func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error), extra func(*cobra.Command)) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			s, err := call(cmd, c)
			if err != nil {
				return err
			}
			return runner.FormatStatus(cmd.OutOrStdout(), s)
		},
	}
	f.add(cmd)
	if extra != nil {
		extra(cmd)
	}
	return cmd
}

func newDrainCommand() *cobra.Command {
	return controlCommand("drain", "Stop claiming tasks; the running task finishes (lasts until runner resume, also across restarts)",
		func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error) { return c.Drain(cmd.Context()) }, nil)
}

func newResumeCommand() *cobra.Command {
	return controlCommand("resume", "Claim tasks again after runner drain",
		func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error) { return c.Resume(cmd.Context()) }, nil)
}

func newQuarantineCommand() *cobra.Command {
	var reason string
	var d time.Duration
	return controlCommand("quarantine --reason TEXT [--for DURATION]", "Quarantine the machine: it stays up but claims nothing; mirrored to the queue",
		func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error) {
			req := runner.QuarantineRequest{Reason: reason}
			if d < 0 {
				return nil, fmt.Errorf("--for: %s is negative; give a positive duration like 2h", d)
			}
			if d > 0 {
				req.For = d.String()
			}
			return c.Quarantine(cmd.Context(), req)
		}, func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&reason, "reason", "", "why (shown by status and kept in the state file)")
			cmd.Flags().DurationVar(&d, "for", 0, "lift it automatically after this long, e.g. 2h or 30m (default: until runner unquarantine)")
			_ = cmd.MarkFlagRequired("reason")
		})
}

func newUnquarantineCommand() *cobra.Command {
	return controlCommand("unquarantine", "Lift the quarantine, whatever its source",
		func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error) {
			return c.Unquarantine(cmd.Context())
		}, nil)
}

func newRebootCommand() *cobra.Command {
	var afterTask bool
	return controlCommand("reboot [--after-task]", "Reboot the machine once no task runs (running tasks get runner.drainGrace, or all the time they need with --after-task)",
		func(cmd *cobra.Command, c *runner.Client) (*runner.Status, error) {
			return c.Reboot(cmd.Context(), runner.RebootRequest{AfterTask: afterTask})
		}, func(cmd *cobra.Command) {
			cmd.Flags().BoolVar(&afterTask, "after-task", false, "wait for the running task to end, however long it takes")
		})
}

func newCheckCommand() *cobra.Command {
	var f controlFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--json]",
		Short: "Run every check now (checks directory and built-in) and show the results; exit 1 if unhealthy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			rep, err := c.Check(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				if err := runner.FormatCheckReport(out, rep); err != nil {
					return err
				}
			}
			if !rep.Healthy {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the runner's version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildversion.Get()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "runner", info.String(), info.Platform, info.Go)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print version, commit, date, Go version and platform as JSON")
	return cmd
}
