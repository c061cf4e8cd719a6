// Package dashboard tests the provisioner's dashboard in headless Chromium
// against a devstack with real runners (package internal/browsertest):
// sign-in, the pages, the actions and their effect on the runners, and the
// refusals; and behind a TLS-terminating proxy: the session's cookie over
// https. Each test saves a screenshot per page; with
// LABRUNNER_DASHBOARD_SHOTS=docs/img they also refresh docs/dashboard.md's
// pictures.
package dashboard
