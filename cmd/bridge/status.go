package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/bridge"
	"github.com/labrunner/labrunner/bridge/client"
)

func newStatusCommand() *cobra.Command {
	var url, configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--url URL | --config FILE]",
		Short: "show a running bridge's tasks tracked, lag and dead letters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" && configPath == "" {
				return usageError{errors.New("status: give --url http://host:port or --config FILE (its listen address is used)")}
			}
			if url == "" {
				cfg, err := bridge.LoadConfig(configPath)
				if err != nil {
					return err
				}
				url = "http://" + cfg.Listen
			}
			c, err := client.New(url, client.Options{RetryMax: 2})
			if err != nil {
				return usageError{err}
			}
			raw, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), string(raw))
				return err
			}
			var st bridge.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("status answer: %w", err)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the bridge's HTTP address, e.g. http://127.0.0.1:8090")
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "bridge config file; its listen address is queried")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON status")
	return cmd
}

func printStatus(w io.Writer, st bridge.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	last := "no message yet"
	if st.LastMessageSecondsAgo >= 0 {
		last = fmt.Sprintf("last message %s ago", time.Duration(st.LastMessageSecondsAgo)*time.Second)
	}
	fmt.Fprintf(tw, "instance\t%s\n", st.Instance)
	fmt.Fprintf(tw, "tasks tracked\t%d (queued %d, running %d, unbound %d)\n", st.Tasks, st.Queued, st.Running, st.Unbound)
	fmt.Fprintf(tw, "lag\toldest queued %s; %s; reclaims overdue %d\n", time.Duration(st.OldestQueuedSeconds)*time.Second, last, st.ReclaimOverdue)
	fmt.Fprintf(tw, "dead letters\t%d\n", st.DeadLetters)
	for _, d := range st.LatestDead {
		fmt.Fprintf(tw, "\t%s %s %s: %s\n", time.Unix(d.At, 0).UTC().Format(time.RFC3339), d.Queue, d.RoutingKey, d.Error)
	}
	names := make([]string, 0, len(st.PendingByBuilder))
	for n := range st.PendingByBuilder {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(tw, "pending requests\t%d builders\n", len(names))
	for _, n := range names {
		fmt.Fprintf(tw, "\t%s: %d\n", n, st.PendingByBuilder[n])
	}
	return tw.Flush()
}
