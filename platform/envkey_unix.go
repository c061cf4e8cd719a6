//go:build unix

package platform

func envKey(name string) string { return name }
