//go:build unix

package platform

import (
	"context"
	"time"
)

// serviceWaitsForConfig: launchd (KeepAlive) and systemd (Restart=always)
// would restart a runner that exits for want of a configuration for ever.
const serviceWaitsForConfig = true

// runAsService: launchd and systemd start a service as a plain process
// and stop it with SIGTERM, which the runner already handles.
func runAsService(string, func(context.Context) error) (bool, error) { return false, nil }

// stopServiceAndWait: a running program's file can be replaced on Unix,
// so there is no process to wait for; the service manager stops it.
func stopServiceAndWait(string, time.Duration) (bool, error) { return false, nil }
