// Command provisioner serves the labrunner provisioner (`provisioner
// serve`) and administers it through its API (`pools`, `machines`,
// `token`): tables for people, --json for scripts.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/version"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "provisioner:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "provisioner",
		Short:         "labrunner's machine registry, pool assigner and sizing API",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.url, "url", os.Getenv("LABRUNNER_PROVISIONER_URL"), "provisioner base URL (env LABRUNNER_PROVISIONER_URL)")
	pf.StringVar(&g.token, "token", "", "API token (default: env LABRUNNER_PROVISIONER_TOKEN)")
	pf.BoolVar(&g.json, "json", false, "print JSON for scripts instead of tables")
	root.AddCommand(newServeCommand(), newPoolsCommand(g), newMachinesCommand(g), newTokenCommand(g))
	return root
}
