// Command runner runs labrunner's agent on a lab machine: `runner run`
// claims and runs Taskcluster tasks, `runner run-task` runs one task
// locally.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	buildversion "github.com/labrunner/labrunner/internal/version"
)

// version is the release version reported to the provisioner and in
// status; `make build` stamps it (internal/version).
var version = buildversion.Get().Version

// exitError carries a specific exit code out of a command.
type exitError struct{ code int }

// Error names the exit code.
func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func main() {
	err := newRootCommand().Execute()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "runner",
		Short:         "labrunner's machine-side program: runs Taskcluster tasks",
		Version:       buildversion.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(), newRunTaskCommand(), newKeypairCommand(), newEnrollCommand(), newRemoveDataCommand())
	root.AddCommand(runnerCommands()...)
	return root
}
