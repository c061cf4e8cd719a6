package runner

// All kardianos/service wiring is here, so service behaviour is found in
// one place. kardianos writes and removes the service definition (Windows
// SCM entry, LaunchDaemon plist, systemd unit or, without systemd, a SysV
// init script) and asks the manager to start and stop it; platform adds
// what kardianos does not do or does wrongly (see platform/service.go).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kardianos/service"

	"github.com/labrunner/labrunner/platform"
)

// stopWait bounds `runner service stop`: the default drain grace and a margin.
const stopWait = 12 * time.Minute

// ServiceActions are the actions of `runner service`.
var ServiceActions = []string{"install", "configure", "uninstall", "start", "stop", "restart", "status"}

// noProgram satisfies kardianos's Interface: the runner runs its service
// itself (cmd/runner run → platform.RunAsService), kardianos only manages
// the definition.
type noProgram struct{}

// Start does nothing: the runner starts itself.
func (noProgram) Start(service.Service) error { return nil }

// Stop does nothing: the runner stops itself.
func (noProgram) Stop(service.Service) error { return nil }

// ServiceConfig is the service definition for a runner reading configPath.
func ServiceConfig(exe, configPath string) *service.Config {
	args := platform.ServiceArgs(configPath)
	return &service.Config{
		Name:        platform.ServiceName(),
		DisplayName: platform.ServiceDisplayName,
		Description: platform.ServiceDescription,
		Executable:  exe,
		Arguments:   args,
		Option:      service.KeyValue(platform.ServiceOptions(exe, args)),
	}
}

// ControlService performs a `runner service` action and returns what to
// tell the operator.
func ControlService(action, configPath string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("service %s: find this program: %w", action, err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("service %s: resolve this program's path: %w", action, err)
	}
	if configPath, err = filepath.Abs(configPath); err != nil {
		return "", fmt.Errorf("service %s: config path: %w", action, err)
	}
	s, err := service.New(noProgram{}, ServiceConfig(exe, configPath))
	if err != nil {
		return "", fmt.Errorf("service %s: %w", action, err)
	}
	name := platform.ServiceName()
	switch action {
	case "status":
		st, err := s.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled):
			return fmt.Sprintf("%s: not installed (%s)", name, s.Platform()), nil
		case err != nil:
			// kardianos's SysV script exits 1 for "Stopped", which
			// kardianos reports as an error.
			return fmt.Sprintf("%s: not running or not installed (the service manager says: %v; %s)", name, err, s.Platform()), nil
		case st == service.StatusRunning:
			return fmt.Sprintf("%s: running (%s)", name, s.Platform()), nil
		case st == service.StatusStopped:
			return fmt.Sprintf("%s: stopped (%s)", name, s.Platform()), nil
		}
		return fmt.Sprintf("%s: unknown (%s)", name, s.Platform()), nil
	case "install":
		if _, err := os.Stat(configPath); err != nil {
			return "", fmt.Errorf("service install: config %s: %w; write it first (docs/config.md)", configPath, err)
		}
		if err := s.Install(); err != nil {
			return "", fmt.Errorf("service install: %w", err)
		}
		if err := platform.AfterServiceInstall(name); err != nil {
			return "", fmt.Errorf("service install: installed, but: %w", err)
		}
		return fmt.Sprintf("installed %s (%s) running %s run --config %s; start it with `runner service start` (it also starts at boot)", name, s.Platform(), exe, configPath), nil
	case "configure":
		// For an installer that registered the service itself (the MSI).
		if err := platform.AfterServiceInstall(name); err != nil {
			return "", fmt.Errorf("service configure: %w", err)
		}
		return fmt.Sprintf("configured %s (%s): restart on failure, start at boot", name, s.Platform()), nil
	case "uninstall":
		if handled, _ := platform.ServiceControl("stop", name); !handled {
			_ = s.Stop()
		}
		if err := s.Uninstall(); err != nil {
			return "", fmt.Errorf("service uninstall: %w", err)
		}
		if err := platform.AfterServiceUninstall(name); err != nil {
			return "", fmt.Errorf("service uninstall: uninstalled, but: %w", err)
		}
		return fmt.Sprintf("uninstalled %s (%s)", name, s.Platform()), nil
	case "start", "stop", "restart":
		handled, err := platform.ServiceControl(action, name)
		if !handled && action == "stop" {
			// Returns once the process is gone, so that an installer can
			// replace the program (Windows); long enough for a drain.
			handled, err = platform.StopServiceAndWait(name, stopWait)
		}
		if !handled {
			err = service.Control(s, action)
		}
		if err != nil {
			return "", fmt.Errorf("service %s: %w", action, err)
		}
		msg := map[string]string{"start": "started", "stop": "stopped (running tasks were drained)", "restart": "restarted"}[action]
		return fmt.Sprintf("%s %s", name, msg), nil
	}
	return "", fmt.Errorf("service: unknown action %q; use one of %v", action, ServiceActions)
}
