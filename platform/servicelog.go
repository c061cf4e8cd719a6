package platform

import "io"

// ServiceLog is where the runner should log when the OS service manager
// started it: the Windows Event Log (source name, registered at install),
// since the service control manager keeps no standard error. It is nil on
// macOS and Linux, where launchd and systemd keep standard error.
func ServiceLog(name string) (io.WriteCloser, error) { return serviceLog(name) }
