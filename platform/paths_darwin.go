package platform

import "path/filepath"

const defaultDataDir = "/Library/Application Support/labrunner"

const defaultConfigPath = "/Library/Application Support/labrunner/runner.yml"

func defaultControlPath(stateDir string) string { return filepath.Join(stateDir, "control.sock") }
