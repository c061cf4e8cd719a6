package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/provisioner/client"
)

func newTokenCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "create API and enrollment tokens"}
	var admin, readonly bool
	var enroll int
	var expires, desc string
	create := &cobra.Command{Use: "create (--admin | --readonly | --enroll N)", Short: "create a token; it is printed once", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		req := client.TokenRequest{ExpiresIn: expires, Description: desc}
		n := 0
		if admin {
			req.Kind, n = client.TokenAdmin, n+1
		}
		if readonly {
			req.Kind, n = client.TokenReadOnly, n+1
		}
		if enroll > 0 {
			req.Kind, req.Uses, n = client.TokenEnroll, enroll, n+1
		}
		if n != 1 {
			return errors.New("choose exactly one of --admin, --readonly or --enroll N")
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		cx, cancel := ctx()
		defer cancel()
		tok, err := c.CreateToken(cx, req)
		if err != nil {
			return err
		}
		if g.json {
			return printJSON(cmd.OutOrStdout(), tok)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s token %s", tok.Kind, tok.ID)
		if tok.Uses > 0 {
			fmt.Fprintf(out, ", %d uses", tok.Uses)
		}
		if tok.Expires != nil {
			fmt.Fprintf(out, ", expires %s", tok.Expires.Format("2006-01-02T15:04:05Z"))
		}
		fmt.Fprintf(out, " (shown once):\n%s\n", tok.Token)
		return nil
	}}
	f := create.Flags()
	f.BoolVar(&admin, "admin", false, "an admin token (pools, actions, tokens)")
	f.BoolVar(&readonly, "readonly", false, "a read-only token (dashboards)")
	f.IntVar(&enroll, "enroll", 0, "an enrollment token usable by N machines")
	f.StringVar(&expires, "expires", "", "lifetime, e.g. 24h (enrollment tokens default to 24h)")
	f.StringVar(&desc, "description", "", "what the token is for")
	cmd.AddCommand(create)
	return cmd
}
