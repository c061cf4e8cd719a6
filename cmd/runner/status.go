package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/runner"
)

// exitNotRunning is `runner status`'s exit code when the runner is not
// running (the last state is still shown).
const exitNotRunning = 3

func newStatusCommand() *cobra.Command {
	var f controlFlags
	var asJSON, watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "status [--json] [--watch]",
		Short: "Show the runner's state, tasks, checks, quarantine and reboot policy (docs/status.md); exit 3 if it is not running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := f.resolve()
			if err != nil {
				return err
			}
			c := runner.NewClient(rc.ControlSocket)
			for {
				s, err := c.Status(cmd.Context())
				if errors.Is(err, runner.ErrNotRunning) {
					s, err = runner.ReadStatus(rc, version)
				}
				if err != nil {
					return err
				}
				if m, err := runner.ControlService("status", f.config); err == nil {
					s.Service.Manager = m
				}
				if watch && !asJSON {
					fmt.Fprint(cmd.OutOrStdout(), "\033[H\033[2J")
				}
				if err := printStatus(cmd.OutOrStdout(), s, asJSON); err != nil {
					return err
				}
				if !watch {
					if !s.Service.Running {
						return exitError{code: exitNotRunning}
					}
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	f.addWithState(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON (stable, see docs/status.md)")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "refresh interval with --watch")
	return cmd
}

func printStatus(w io.Writer, s *runner.Status, asJSON bool) error {
	if asJSON {
		return printJSON(w, s)
	}
	return runner.FormatStatus(w, s)
}
