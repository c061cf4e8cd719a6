// Package devqueue is a Taskcluster-compatible queue for development, tests
// and the demo. Agents, bridges and provisioners talk to it with client-go's
// tcqueue exactly as they talk to the real queue (v44.23.4): request and
// response bodies are validated against the queue's own schemas (copied in
// schemas/), errors have Taskcluster's shape, and the same Pulse messages are
// published through a pulse.Publisher.
//
// Served (under /api/queue/v1): ping, task, status, createTask, scheduleTask,
// rerunTask, cancelTask, claimWork, reclaimTask, reportCompleted,
// reportFailed, reportException, createArtifact (s3, reference, link,
// error), finishArtifact (always refused: there are no object artifacts),
// getArtifact, getLatestArtifact, listArtifacts, listLatestArtifacts,
// artifactInfo, latestArtifactInfo, artifact, latestArtifact, claimTask
// (deprecated), pendingTasks, listTaskQueues, getTaskQueue, listWorkers,
// getWorker, quarantineWorker and declareWorker. s3 artifact
// content is uploaded to and served from /_devqueue/blobs/<token>.
//
// Life of a task (the real queue's, see services/queue/src and the
// db/versions functions):
//
//	createTask ─(no deps)─▶ pending ─claimWork─▶ running ─report*─▶ completed | failed | exception
//	    └─(deps)─▶ unscheduled ─deps satisfied | scheduleTask─▶ pending
//	running ─takenUntil passes─▶ exception/claim-expired (+ pending run "retry" while retries last)
//	running ─worker-shutdown | intermittent-task─▶ exception (+ pending run "retry" | "task-retry")
//	pending | running | unscheduled ─cancelTask─▶ exception/canceled
//	pending | running | unscheduled ─deadline + DeadlineDelay─▶ exception/deadline-exceeded
//	resolved ─rerunTask─▶ pending run "rerun"
//
// Where devqueue differs from the real queue:
//   - State is in memory only: a restart loses every task, artifact and
//     worker. It is a development queue.
//   - Scopes are enforced only for reading a non-public artifact
//     (queue:get-artifact:<name> for the name and each link it leads
//     through; 403 InsufficientScopes without it). Other endpoints that
//     declare scopes in the real queue require a valid Hawk signature (401
//     AuthenticationFailed when it is missing or bad), but any
//     authenticated client may call them.
//     Anonymous callers may use the endpoints without scopes (ping, task,
//     status), read public/ artifacts, and list artifacts and artifact info
//     (the real queue grants these through the anonymous role in typical
//     deployments; it answers 403 InsufficientScopes rather than 401 where
//     the anonymous role lacks a scope).
//   - pendingTasks is exact, not a 20-second-cached upper bound.
//   - There is no object service: createArtifact refuses storageType
//     "object" with a 400, and finishArtifact always answers 400 (the real
//     v44 queue answers 500 for non-object artifacts through a typo).
//   - A task is forgotten (with its artifacts) once its expires passes; an
//     artifact's own expires is not enforced before that.
//   - When a dependency resolves failed or exception, every all-resolved
//     dependent is satisfied; the real dependencytracker.js returns at the
//     first all-completed dependent it meets, which can leave later
//     all-resolved dependents unscheduled (an upstream bug).
//   - The claim and deadline resolvers scan every ResolverInterval instead of
//     reading advisory queues, so they act within one interval.
//
// Where the real queue's source differs from its documentation (and from
// labrunner's spec), devqueue follows the source:
//   - takenUntil keeps milliseconds: workclaimer.js's "rounding up to the
//     nearest second" rounds getSeconds(), an integer, so it never rounds,
//     and the per-run clientId then ends in e.g. "until/1700000000.123".
//   - Repeating an idempotent call re-publishes its messages (createTask
//     re-announces task-defined, and task-pending while run 0 is pending).
//   - The s3 createArtifact reply's expires is that of the upload URL
//     (now + 45 min), not the artifact's.
//
// Pulse messages are queued in state-change order while the state lock is
// held and published by one goroutine outside it (bounded). A message the
// broker does not take within 30 s waits, with those behind it, for the
// broker to come back; one the broker refuses is logged and dropped.
package devqueue
