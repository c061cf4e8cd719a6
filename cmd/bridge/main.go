// Command bridge runs the Buildbot Bridge (`bridge serve --config FILE`)
// and shows a running instance's state (`bridge status`). It only parses
// flags and calls package bridge; docs/bridge.md documents the config.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command-line mistake; it exits with status 2 as
// argparse-based tools (and BBB's v2 CLI) do.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "bridge",
		Short:         "the Buildbot Bridge: Taskcluster tasks as Buildbot build requests, and a master API for agents",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(), newStatusCommand())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "bridge:", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "usage: bridge serve --config FILE | bridge status [--url URL | --config FILE] [--json]")
		return 2
	}
	return 1
}
