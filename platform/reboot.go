package platform

// Reboot restarts the machine in the orderly way its OS provides: services
// are stopped and file systems synced before the restart. reason is shown
// to whoever is logged on and kept in the OS's logs where the OS has a
// place for it. On success the machine is going down; callers should do
// nothing more than wait.
func Reboot(reason string) error { return reboot(reason) }
