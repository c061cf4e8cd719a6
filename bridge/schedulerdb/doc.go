// Package schedulerdb reads and writes the Buildbot 0.8.2 SchedulerDB the way
// the Buildbot Bridge and a Buildbot master do (docs/bridge.md,
// "SchedulerDB"): it
// injects build requests for Taskcluster tasks, claims them with the master's
// rules, completes and cancels them, and answers the queries of the bridge's
// listeners and reflector.
//
// The schema is one Go description of the 0.8.2 tables (schema.go), rendered
// for MySQL/MariaDB (what Buildbot uses in production) and for SQLite (the
// embedded default, modernc.org/sqlite without cgo).
//
// Several bridge instances may share one SchedulerDB. Claims are
// compare-and-swap UPDATEs on the claim columns; injections and build numbers
// are serialised per task and per builder (GET_LOCK on MySQL, BEGIN IMMEDIATE
// on SQLite) so that concurrent duplicate work never creates a second build
// request or reuses a build number.
package schedulerdb
