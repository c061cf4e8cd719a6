//go:build !unix && !windows

package platform

import "os"

func renameAt(*os.File, string, *os.File, string) error {
	return unsupportedHere("renaming between directory handles")
}

func removeAt(*os.File, string) error {
	return unsupportedHere("removing through a directory handle")
}
