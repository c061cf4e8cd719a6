// Package testrunner runs real runners in the test's process for
// end-to-end tests (e2e, internal/browsertest): a configuration any test
// machine passes (a reboot that does nothing, health checks any machine
// passes, no watchdog, tasks run as the runner's own account), written to a
// file, loaded and run as the runner service runs it, stopped when the
// test ends. Provisioner gives the configuration's link to a provisioner
// on a machine that must not be taken for an EC2 instance, and Facts lets
// several runners on one computer register as several machines. Only
// tests import it; runner's own tests cannot (it imports runner).
package testrunner
