//go:build unix

package platform

import "context"

// runAsService: launchd and systemd start a service as a plain process
// and stop it with SIGTERM, which the runner already handles.
func runAsService(string, func(context.Context) error) (bool, error) { return false, nil }
