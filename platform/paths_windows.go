package platform

const (
	defaultControlPath = `\\.\pipe\labrunner-control`
	defaultConfigPath  = `C:\ProgramData\labrunner\runner.yml`
)
