//go:build linux || darwin

package platform

import "fmt"

// refuseMightyConsole refuses a console account that is root: the console
// outlives the task, and root's tasks would own the runner and the
// machine.
func (u *TaskUser) refuseMightyConsole() error {
	if u.sys.uid == 0 {
		return fmt.Errorf("the console's account %s is root: its tasks would control the runner and the machine; log an unprivileged account in at the console (autologin) and name it with consoleUser", u.Name)
	}
	return nil
}
