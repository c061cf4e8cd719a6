package platform

// DefaultDataDir is where an enrolled machine keeps the runner's state and
// task directories unless told otherwise (`runner enroll`, the installers):
// C:\ProgramData\labrunner on Windows, /Library/Application
// Support/labrunner on macOS, /var/lib/labrunner on Linux.
func DefaultDataDir() string { return defaultDataDir }
