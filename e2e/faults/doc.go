// Package faults is the fault suite: end-to-end tests that run the real
// runner and provisioner binaries (built by the tests) against a dev queue
// and provisioner reached through fault-injecting proxies
// (internal/faultproxy), and check what happens to tasks, logs and
// machines when a process is killed, the power goes, the network is cut or
// calls fail. Each test prints its measured figures on lines starting with
// "FIGURE"; docs/operations.md ("Failure behaviour") records them. The
// package has no code outside its tests.
package faults
