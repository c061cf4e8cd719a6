//go:build windows

package platform

import "strings"

func envKey(name string) string { return strings.ToUpper(name) }
