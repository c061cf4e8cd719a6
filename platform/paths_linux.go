package platform

const (
	defaultControlPath = "/run/labrunner/control.sock"
	defaultConfigPath  = "/etc/labrunner/runner.yml"
)
