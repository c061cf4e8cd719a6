package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/runner"
)

func newRemoveDataCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "remove-data --config FILE",
		Short: "Delete this machine's configuration, state and task directories (uninstalling with REMOVE_DATA=1 does this); stop the service first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := runner.RemoveData(configPath)
			for _, p := range removed {
				fmt.Fprintln(cmd.OutOrStdout(), "removed", p)
			}
			if err == nil && len(removed) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to remove: %s does not exist\n", configPath)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", platform.DefaultConfigPath(), "configuration file naming the state and tasks directories")
	return cmd
}
