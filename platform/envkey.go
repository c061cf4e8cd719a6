package platform

// EnvKey is the form of an environment variable name under which two names
// are the same variable: itself on Unix, upper case on Windows, where
// environment names are case-insensitive.
func EnvKey(name string) string { return envKey(name) }
