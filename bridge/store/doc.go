// Package store is the bridge DB: the `tasks` table that maps a Taskcluster
// task to the Buildbot build request standing for it (docs/bridge.md,
// "Bridge DB: the tasks table"), on SQLite (the embedded default), MySQL/MariaDB or PostgreSQL.
//
// The schema is a set of numbered migrations per dialect embedded in the
// binary and applied at open under a database-wide lock, so any number of
// bridge instances can start against the same database at once.
//
// UNIQUE(taskId, runId) makes Create idempotent: of several instances
// handling the same task-pending at once exactly one is told it created the
// row. Row leases (lease_owner, lease_until) split the reflector's work
// between instances.
package store
