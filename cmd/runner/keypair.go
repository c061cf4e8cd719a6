package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/platform"
)

// newKeypairCommand is generic-worker's new-ed25519-keypair: the
// chain-of-trust signing key (docs/config.md, chainOfTrust).
func newKeypairCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "new-ed25519-keypair --file FILE",
		Short: "Make the chain-of-trust signing key: write the private key to FILE (mode 0600) and print the public key",
		Long: `Make the ed25519 key that signs chain-of-trust documents, in generic-worker's
format: FILE gets the base64 private seed (mode 0600, on Windows a DACL for
the service account, SYSTEM and Administrators; an existing FILE is
never replaced), and the base64 public key is printed for the chain-of-trust
verifiers. Then set chainOfTrust.ed25519SigningKey to FILE in the config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return exitErrorf(cmd, 2, "--file: missing; give the private key file to create, e.g. --file /var/lib/labrunner/ed25519.key")
			}
			pub, err := cot.NewKeyPair(file)
			if err != nil {
				return exitErrorf(cmd, 1, "%v", err)
			}
			// 0600 on Unix already; on Windows a protected DACL.
			if _, err := platform.RestrictToServiceAccount(file); err != nil {
				return exitErrorf(cmd, 1, "%v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), cot.PublicKeyString(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "private key file to create")
	return cmd
}
