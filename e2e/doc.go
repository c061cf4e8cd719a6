// Package e2e holds end-to-end tests that cross services: task graphs
// whose tasks run partly through the Buildbot bridge and partly natively,
// all on one devstack.
package e2e
