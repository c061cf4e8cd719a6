// Package browsertest drives the provisioner's dashboard in headless
// Chromium for end-to-end tests: Start runs a devstack (dev queue,
// provisioner, bridge) with real in-process runners registered into a
// pool, and Env.Browser opens a fresh Chromium (installed by
// scripts/ensure-chromium.sh when missing) that signs in, navigates and
// takes screenshots into the test's artifact directory (and, with
// LABRUNNER_DASHBOARD_SHOTS=<dir>, into that directory of the repository,
// which is how docs/img is refreshed). Only tests import it.
package browsertest
