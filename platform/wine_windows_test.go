//go:build windows

package platform

import "golang.org/x/sys/windows"

// underWine reports whether the tests run under Wine, whose cmd.exe differs
// from Windows' in ways some tests must allow for.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
