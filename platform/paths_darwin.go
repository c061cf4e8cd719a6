package platform

const (
	defaultControlPath = "/var/run/labrunner/control.sock"
	defaultConfigPath  = "/Library/Application Support/labrunner/runner.yml"
)
