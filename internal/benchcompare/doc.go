// Package benchcompare measures labrunner's agent (`runner run`) and
// Taskcluster's generic-worker (simple engine, the version pinned in go.mod)
// side by side against one `devstack serve`, in alternating rounds with a
// fresh worker and task queue for each scenario, then runs the bridge's and
// the provisioner's benchmarks, and writes the medians, the ratios
// labrunner / generic-worker and the servers' figures against their anchors
// into docs/benchmarks.md between markers.
//
// The harness is the Linux-only test TestCompareWorkers, which runs only
// when LABRUNNER_BENCH_COMPARE is set (`make bench-compare`, `make
// bench-quick`); docs/benchmarks.md describes each scenario. This package's
// non-test code is the part that does not depend on the OS: summarising
// rounds, reading `go test -bench` output and rendering the tables.
package benchcompare
