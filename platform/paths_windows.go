package platform

const defaultDataDir = `C:\ProgramData\labrunner`

const defaultConfigPath = `C:\ProgramData\labrunner\runner.yml`

// defaultControlPath is one pipe per machine: pipes have no directories.
func defaultControlPath(string) string { return `\\.\pipe\labrunner-control` }
