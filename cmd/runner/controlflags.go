package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/runner"
)

// controlFlags find the runner's control channel and state file: from
// --socket/--state, else from the configuration file.
type controlFlags struct {
	config, socket, state string
	usesState             bool
}

// add registers --config and --socket on a command that needs the running
// runner.
func (f *controlFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", platform.DefaultConfigPath(), "the runner's configuration file, to find its control socket")
	cmd.Flags().StringVar(&f.socket, "socket", "", "control socket (named pipe on Windows); default from the configuration")
}

// addWithState also registers --state, for a command that reads the state
// file when the runner is not running (only status does).
func (f *controlFlags) addWithState(cmd *cobra.Command) {
	f.usesState = true
	f.add(cmd)
	cmd.Flags().Lookup("config").Usage = "the runner's configuration file, to find its control socket and state file"
	cmd.Flags().StringVar(&f.state, "state", "", "state file, read when the runner is not running; default from the configuration")
}

// resolve returns the runner configuration with the flags applied.
func (f *controlFlags) resolve() (*runner.Config, error) {
	if f.socket != "" && (f.state != "" || !f.usesState) {
		return &runner.Config{ControlSocket: f.socket, StateFile: f.state}, nil
	}
	_, rc, err := runner.Load(f.config)
	var ce *agent.ConfigError
	if errors.As(err, &ce) {
		if _, serr := os.Stat(f.config); serr != nil && f.socket != "" {
			return &runner.Config{ControlSocket: f.socket, StateFile: f.state}, nil
		}
		return nil, fmt.Errorf("configuration %s (pass --config, or --socket and --state): %w", f.config, err)
	}
	if err != nil {
		return nil, err
	}
	if f.socket != "" {
		rc.ControlSocket = f.socket
	}
	if f.state != "" {
		rc.StateFile = f.state
	}
	return rc, nil
}

// client connects to the runner named by the flags.
func (f *controlFlags) client() (*runner.Client, error) {
	rc, err := f.resolve()
	if err != nil {
		return nil, err
	}
	return runner.NewClient(rc.ControlSocket), nil
}
