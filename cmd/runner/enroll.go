package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/runner"
)

// enrollTokenEnv is where `runner enroll` reads the token when no flag gives
// it (the macOS pkg's postinstall passes it so; it stays out of `ps`).
const enrollTokenEnv = "LABRUNNER_ENROLLMENT_TOKEN"

func newEnrollCommand() *cobra.Command {
	var o runner.EnrollOptions
	var tokenFile, tags string
	cmd := &cobra.Command{
		Use:   "enroll --provisioner URL --token T [--pool-hint P]",
		Short: "Register this machine with a provisioner using an enrollment token, and write the service's config and state",
		Long: `Register this machine with a provisioner using an enrollment token (from
"provisioner token create --enroll N"), then write the configuration file
and the provisioner link's state (machine id and machine token) for the
service, with modes 0600/0700 (on Windows an ACL for SYSTEM and
Administrators). The token is spent once and not kept. The MSI, the macOS
pkg and an operator typing this all enrol the same way; run it elevated
(Administrator, or root), then start the service ("runner service start";
the installers do).

A refused token (unknown, used up, expired) or an unreachable provisioner is
an error, and nothing is written. A machine already enrolled with the same
provisioner is left alone (the token is not spent) unless --force.

The token comes from --token, --token-file (- for standard input) or the
environment variable ` + enrollTokenEnv + `.`,
		Example: `  runner enroll --provisioner https://prov.lab.example.com --token lre_… --pool-hint win11-hw
  echo "$TOKEN" | sudo runner enroll --provisioner https://prov.lab.example.com --token-file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := enrollToken(cmd, o.Token, tokenFile)
			if err != nil {
				return err
			}
			o.Token = tok
			if o.Tags, err = parseTags(tags); err != nil {
				return err
			}
			res, err := runner.Enroll(cmd.Context(), o)
			if err != nil {
				return err
			}
			pool := res.PoolID
			if pool == "" {
				pool = "none yet: the provisioner assigns one when a pool fits"
			}
			if res.AlreadyEnrolled {
				fmt.Fprintf(cmd.OutOrStdout(), "already enrolled as machine %s with %s (pool %s); nothing done, the token was not used (--force registers again)\n", res.MachineID, o.ProvisionerURL, pool)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as machine %s with %s (pool %s)\nconfig %s; machine token in %s\nstart the service: runner service start\n",
				res.MachineID, o.ProvisionerURL, pool, res.ConfigPath, res.LinkStatePath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ProvisionerURL, "provisioner", "", "the provisioner's URL (https://…; http:// only on this machine)")
	f.StringVar(&o.Token, "token", "", "the enrollment token (or --token-file, or $"+enrollTokenEnv+")")
	f.StringVar(&tokenFile, "token-file", "", "read the enrollment token from this file (- for standard input)")
	f.StringVar(&o.PoolHint, "pool-hint", "", "the pool this machine is meant for, sent as the machine tag "+runner.PoolHintTag+" (pools select it with constraints.tags)")
	f.StringVar(&tags, "tags", "", "machine tags sent at registration, key=value,key=value (empty: none)")
	f.StringVar(&o.TaskUser, "task-user", "", "write taskUser (per-task, console or service) into the config; empty keeps the runner's default")
	f.StringVar(&o.ConfigPath, "config", platform.DefaultConfigPath(), "configuration file to write")
	f.StringVar(&o.DataDir, "data-dir", platform.DefaultDataDir(), "state directory to use (tasks go in its tasks/ directory)")
	f.BoolVar(&o.Force, "force", false, "register again even if already enrolled, replacing the configuration file")
	return cmd
}

// enrollToken takes the token from exactly one of the flag, the file and
// the environment.
func enrollToken(cmd *cobra.Command, flag, file string) (string, error) {
	env := os.Getenv(enrollTokenEnv)
	n := 0
	for _, s := range []string{flag, file, env} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return "", errors.New("enroll: --token is missing: create an enrollment token with `provisioner token create --enroll 1` and pass it with --token, --token-file or $" + enrollTokenEnv)
	case n > 1:
		return "", errors.New("enroll: give the token once: --token, --token-file or $" + enrollTokenEnv + ", not several")
	case flag != "":
		return flag, nil
	case env != "":
		return env, nil
	}
	var r io.Reader = cmd.InOrStdin()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("enroll: --token-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("enroll: --token-file %s: %w", file, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// parseTags reads "key=value,key=value"; empty is no tags (the installers
// pass their TAGS property as is).
func parseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("enroll: --tags %q: write key=value,key=value", s)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}
