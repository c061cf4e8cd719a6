package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/provisioner/client"
)

func newMachinesCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "machines", Short: "list, show and act on machines"}
	var pool string
	list := &cobra.Command{Use: "list", Short: "list machines", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		cx, cancel := ctx()
		defer cancel()
		ms, err := c.ListMachines(cx, pool)
		if err != nil {
			return err
		}
		if g.json {
			return printJSON(cmd.OutOrStdout(), ms)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MACHINE\tPOOL\tSTATE\tONLINE\tTASK\tHEARTBEAT\tQUARANTINED")
		for _, m := range ms {
			task := "-"
			if m.CurrentTask != nil {
				task = m.CurrentTask.Describe()
			}
			state := m.State
			if m.MovingTo != "" {
				state += "→" + m.MovingTo
			}
			q := "-"
			if m.QuarantinedUntil != nil && m.QuarantinedUntil.After(time.Now()) {
				q = "until " + m.QuarantinedUntil.Format(time.RFC3339) + ": " + m.QuarantineReason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", m.MachineID, dash(m.PoolID), state, m.Online, task, ago(m.LastHeartbeat), q)
		}
		return tw.Flush()
	}}
	list.Flags().StringVar(&pool, "pool", "", "only machines of this pool")
	cmd.AddCommand(list,
		&cobra.Command{Use: "show MACHINE", Short: "show a machine and its recorded actions", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			return machineCall(cmd, g, func(c *client.Client) (*client.MachineDetail, error) {
				cx, cancel := ctx()
				defer cancel()
				return c.GetMachine(cx, args[0])
			})
		}},
		newQuarantineCommand(g),
		reasonCommand(g, "unquarantine MACHINE", "lift a quarantine", (*client.Client).Unquarantine),
		reasonCommand(g, "reboot MACHINE", "reboot a machine once its task is done", (*client.Client).Reboot),
		reasonCommand(g, "drain MACHINE", "stop a machine claiming work", (*client.Client).Drain),
		newAssignCommand(g),
	)
	return cmd
}

// machineCall runs an API call returning a machine and prints it.
func machineCall(cmd *cobra.Command, g *globalFlags, f func(c *client.Client) (*client.MachineDetail, error)) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	d, err := f(c)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), d)
	}
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%s\n", d.MachineID)
	fmt.Fprintf(tw, "pool\t%s\n", dash(d.PoolID))
	if d.MovingTo != "" {
		fmt.Fprintf(tw, "moving to\t%s\n", d.MovingTo)
	}
	fmt.Fprintf(tw, "state\t%s (online %v, draining %v)\n", d.State, d.Online, d.Draining)
	fmt.Fprintf(tw, "host\t%s %s %s %s %s\n", d.Facts.Hostname, d.Facts.OS, d.Facts.OSVersion, d.Facts.Arch, d.Facts.Model)
	fmt.Fprintf(tw, "heartbeat\t%s\n", ago(d.LastHeartbeat))
	if d.QuarantinedUntil != nil {
		fmt.Fprintf(tw, "quarantined\tuntil %s: %s\n", d.QuarantinedUntil.Format(time.RFC3339), d.QuarantineReason)
	}
	for _, h := range d.Health {
		fmt.Fprintf(tw, "health %s\tok=%v %s\n", h.Name, h.OK, h.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, w := range d.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	if len(d.Actions) > 0 {
		fmt.Fprintln(out, "actions:")
		for _, a := range d.Actions {
			fmt.Fprintf(out, "  %s  %-18s %s: %s\n", a.At.Format(time.RFC3339), a.Action, a.Who, a.Why)
		}
	}
	return nil
}

func reasonCommand(g *globalFlags, use, short string, call func(*client.Client, context.Context, string, string) (*client.MachineDetail, error)) *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		return machineCall(cmd, g, func(c *client.Client) (*client.MachineDetail, error) {
			cx, cancel := ctx()
			defer cancel()
			return call(c, cx, args[0], reason)
		})
	}}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return cmd
}

func newQuarantineCommand(g *globalFlags) *cobra.Command {
	var reason, until string
	var forD time.Duration
	cmd := &cobra.Command{Use: "quarantine MACHINE --reason WHY (--for 24h | --until TIME)", Short: "quarantine a machine (mirrored to the queue)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		var t time.Time
		switch {
		case until != "" && forD != 0:
			return errors.New("give --for or --until, not both")
		case until != "":
			var err error
			if t, err = time.Parse(time.RFC3339, until); err != nil {
				return fmt.Errorf("--until %q is not an RFC 3339 time such as 2026-12-01T00:00:00Z", until)
			}
		case forD > 0:
			t = time.Now().Add(forD)
		default:
			return errors.New("say how long: --for 24h or --until 2026-12-01T00:00:00Z")
		}
		return machineCall(cmd, g, func(c *client.Client) (*client.MachineDetail, error) {
			cx, cancel := ctx()
			defer cancel()
			return c.Quarantine(cx, args[0], reason, t)
		})
	}}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().StringVar(&until, "until", "", "end of the quarantine, RFC 3339")
	cmd.Flags().DurationVar(&forD, "for", 0, "length of the quarantine")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newAssignCommand(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: "assign MACHINE POOL", Short: "move a machine to a pool (it drains first)", Args: cobra.ExactArgs(2), RunE: func(cmd *cobra.Command, args []string) error {
		return machineCall(cmd, g, func(c *client.Client) (*client.MachineDetail, error) {
			cx, cancel := ctx()
			defer cancel()
			return c.Assign(cx, args[0], args[1], reason)
		})
	}}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return cmd
}
