package platform

// The runner's local control channel is HTTP over a Unix socket (mode
// 0600, so only root talks to it) or, on Windows, over a named pipe whose
// ACL admits only Administrators and SYSTEM. It is never a TCP port: a
// machine's drain and reboot buttons must not be reachable from the
// network.

import (
	"context"
	"net"
)

// ListenControl listens on the control channel at path (a socket path, or
// a pipe name like \\.\pipe\labrunner on Windows).
func ListenControl(path string) (net.Listener, error) { return listenControl(path) }

// DialControl connects to the control channel at path.
func DialControl(ctx context.Context, path string) (net.Conn, error) {
	return dialControl(ctx, path)
}

// DefaultControlPath is where the runner's control channel is unless the
// configuration says otherwise: a socket in the state directory, or a
// fixed pipe name on Windows.
func DefaultControlPath(stateDir string) string { return defaultControlPath(stateDir) }

// DefaultConfigPath is where the service reads its configuration unless
// told otherwise.
func DefaultConfigPath() string { return defaultConfigPath }
