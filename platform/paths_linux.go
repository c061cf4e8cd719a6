package platform

import "path/filepath"

const defaultDataDir = "/var/lib/labrunner"

const defaultConfigPath = "/etc/labrunner/runner.yml"

func defaultControlPath(stateDir string) string { return filepath.Join(stateDir, "control.sock") }
