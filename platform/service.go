package platform

// What the OS service managers need that kardianos/service (used by the
// runner's service.go) does not do, or does wrongly:
//
//	Windows  svc.Run first, 1063 = interactive (works in containers and
//	         under Wine); after install, restart-on-failure also for
//	         non-crash failures and delayed auto-start via svc/mgr
//	macOS    our own LaunchDaemon plist (RunAtLoad, KeepAlive, logs under
//	         /Library/Logs/labrunner); start/stop with launchctl
//	         bootstrap/bootout, not the deprecated load/unload
//	Linux    a systemd unit with Restart=always (kardianos option) and
//	         Delegate=yes (a drop-in: the runner makes a cgroup per task)

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ServiceName is the runner's name to the OS service manager (the launchd
// Label on macOS).
func ServiceName() string { return serviceName }

// ServiceDisplayName is the name shown in service lists.
const ServiceDisplayName = "labrunner runner"

// ServiceDescription describes the service in service lists.
const ServiceDescription = "Runs Taskcluster CI tasks on this lab machine: checks, reboots, quarantine and the agent."

// ServiceOptions are kardianos/service options for this OS; exe and args
// are the command the service runs.
func ServiceOptions(exe string, args []string) map[string]any { return serviceOptions(exe, args) }

// AfterServiceInstall configures what kardianos/service cannot.
func AfterServiceInstall(name string) error { return afterServiceInstall(name) }

// AfterServiceUninstall removes what AfterServiceInstall added beside the
// service's definition.
func AfterServiceUninstall(name string) error { return afterServiceUninstall(name) }

// ServiceControl starts, stops or restarts the service where kardianos's
// way is wrong for this OS; handled is false when kardianos should do it.
func ServiceControl(action, name string) (handled bool, err error) {
	return serviceControl(action, name)
}

// RunAsService runs run under the OS service manager when it started this
// process, and returns isService false (without calling run) when the
// process was started interactively. run's ctx ends when the service is
// asked to stop.
func RunAsService(name string, run func(ctx context.Context) error) (isService bool, err error) {
	return runAsService(name, run)
}

// ServiceArgs are the arguments service definitions start the runner with
// (runner service install, the macOS pkg's LaunchDaemon): where
// serviceWaitsForConfig, a service registered before the machine is
// enrolled waits for its configuration instead of exiting at every boot.
func ServiceArgs(configPath string) []string {
	if !serviceWaitsForConfig {
		return []string{"run", "--config", configPath}
	}
	return []string{"run", "--wait-for-config", "--config", configPath}
}

// LaunchDaemonsDir is where system-wide launchd jobs live.
const LaunchDaemonsDir = "/Library/LaunchDaemons"

// LaunchdLogDir is where the runner's launchd job writes stdout and stderr.
const LaunchdLogDir = "/Library/Logs/labrunner"

// LaunchdPlist is the runner's LaunchDaemon definition. It starts at boot
// without anyone logging in (a daemon, not an agent), is restarted whenever
// it exits, and logs under LaunchdLogDir.
func LaunchdPlist(label, exe string, args []string) []byte {
	var b strings.Builder
	esc := func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + esc(label) + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range append([]string{exe}, args...) {
		b.WriteString("\t\t<string>" + esc(a) + "</string>\n")
	}
	fmt.Fprintf(&b, `	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<true/>
	<key>ProcessType</key>
	<string>Standard</string>
	<key>ThrottleInterval</key>
	<integer>30</integer>
	<key>ExitTimeOut</key>
	<integer>900</integer>
	<key>StandardOutPath</key>
	<string>%s/runner.out.log</string>
	<key>StandardErrorPath</key>
	<string>%s/runner.err.log</string>
</dict>
</plist>
`, LaunchdLogDir, LaunchdLogDir)
	return []byte(b.String())
}

// StopServiceAndWait stops the service and, on Windows, waits until its
// process has exited, so that an installer can replace or delete the
// program file (Windows keeps a running program's file locked, and a
// service reports "stopped" a moment before its process ends). handled is
// false where the service manager's own stop is enough.
func StopServiceAndWait(name string, timeout time.Duration) (handled bool, err error) {
	return stopServiceAndWait(name, timeout)
}
