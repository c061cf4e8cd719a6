package platform

const serviceName = "labrunner"

// serviceOptions: systemd restarts the runner whatever way it exits; the
// runner stays up while quarantined, so this is no respawn loop.
func serviceOptions(string, []string) map[string]any {
	return map[string]any{"Restart": "always", "LimitNOFILE": 65536}
}

func afterServiceInstall(string) error { return nil }

func serviceControl(string, string) (bool, error) { return false, nil }
