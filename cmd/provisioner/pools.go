package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newPoolsCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "pools", Short: "list, show, apply and delete pools"}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "list pools", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cx, cancel := ctx()
			defer cancel()
			pools, err := c.ListPools(cx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), pools)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POOL\tSOURCE\tQUEUE\tBUILDERS\tMIN\tMAX\tPRIORITY")
			for _, p := range pools {
				// A both pool has a queue and builders; show each.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", p.PoolID, p.Spec.Source, dash(p.Spec.TaskQueueID), dash(strings.Join(p.Spec.Builders, ",")),
					p.Spec.MinCapacity, p.Spec.MaxCapacity, p.Spec.Priority)
			}
			return tw.Flush()
		}},
		&cobra.Command{Use: "show POOL", Short: "show a pool and its sizing", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cx, cancel := ctx()
			defer cancel()
			p, err := c.GetPool(cx, args[0])
			if err != nil {
				return err
			}
			sz, err := c.Sizing(cx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"pool": p, "sizing": sz})
			}
			out := cmd.OutOrStdout()
			spec, _ := json.Marshal(p.Spec)
			var generic any
			_ = json.Unmarshal(spec, &generic)
			y, _ := yaml.Marshal(map[string]any{p.PoolID: generic})
			fmt.Fprint(out, string(y))
			fmt.Fprintf(out, "\nsizing: pending %d, running %d, idle %d, quarantined %d, offline %d, assigned %d, target %d, recommended %d\n",
				sz.Pending, sz.Running, sz.Idle, sz.Quarantined, sz.Offline, sz.Assigned, sz.Target, sz.RecommendedCapacity)
			for _, r := range sz.Reasoning {
				fmt.Fprintln(out, "  -", r)
			}
			return nil
		}},
		newPoolsApplyCommand(g),
		&cobra.Command{Use: "delete POOL", Short: "delete a pool (its machines become unassigned)", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cx, cancel := ctx()
			defer cancel()
			if err := c.DeletePool(cx, args[0]); err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintln(cmd.OutOrStdout(), "deleted", args[0])
			}
			return nil
		}},
	)
	return cmd
}

// poolsFile is the YAML of `pools apply -f`: pool id to spec.
type poolsFile struct {
	Pools map[string]any `yaml:"pools"`
}

func newPoolsApplyCommand(g *globalFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{Use: "apply -f pools.yaml", Short: "create or replace the pools in a YAML file", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read pools file (-f): %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		var pf poolsFile
		if err := dec.Decode(&pf); err != nil {
			return fmt.Errorf("%s: %w (the file is `pools:` mapping pool ids to specs)", file, err)
		}
		if len(pf.Pools) == 0 {
			return fmt.Errorf("%s: no pools under `pools:`", file)
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		cx, cancel := ctx()
		defer cancel()
		ids := make([]string, 0, len(pf.Pools))
		for id := range pf.Pools {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			// The server validates, so the file gets the same field-naming
			// errors as the API.
			body, err := json.Marshal(pf.Pools[id])
			if err != nil {
				return fmt.Errorf("%s: pool %s: %w", file, id, err)
			}
			p, err := c.PutPoolJSON(cx, id, body)
			if err != nil {
				return fmt.Errorf("%s: pool %s: %w", file, id, err)
			}
			if !g.json {
				fmt.Fprintf(cmd.OutOrStdout(), "applied %s (%s, %d-%d machines)\n", p.PoolID, p.Spec.Source, p.Spec.MinCapacity, p.Spec.MaxCapacity)
			}
		}
		if g.json {
			return printJSON(cmd.OutOrStdout(), map[string]any{"applied": ids})
		}
		return nil
	}}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file with `pools:` mapping pool ids to specs")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
