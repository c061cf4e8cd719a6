package platform

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// tokenElevated says whether a token is elevated; a variable so that
// tests under Wine, whose user is an elevated administrator, can reach
// what lies past the refusal.
var tokenElevated = func(t windows.Token) bool { return t.IsElevated() }

// refuseMightyConsole refuses a console account whose token is elevated
// (an administrator with UAC off, or the built-in Administrator): its
// tasks could read the runner's files, which Administrators may open, and
// change the machine for every later task.
func (u *TaskUser) refuseMightyConsole() error {
	if tokenElevated(u.sys.token) {
		return fmt.Errorf("the console's account %s has an elevated token (an administrator with UAC off, or the built-in Administrator): its tasks would control the runner and the machine; log a standard user in at the console (autologin)", u.Name)
	}
	return nil
}
