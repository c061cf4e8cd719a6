// Package devpurgecache is a Taskcluster-compatible purge-cache service for
// development, tests and the demo, served by devstack beside the dev queue
// under /api/purge-cache/v1/. Clients reach it with client-go's
// tcpurgecache exactly as they reach the real service (v44.23.4,
// services/purge-cache/src/api.js): purgeCache, purgeRequests,
// allPurgeRequests and ping.
//
//	purgeCache(workerPoolId, {cacheName}) ──▶ request (workerPoolId, cacheName): before = now, expires = now + 1 day
//	purgeRequests(workerPoolId, since)    ──▶ that pool's open requests with before >= since
//	allPurgeRequests                      ──▶ every open request
//
// Where it differs from the real service:
//   - State is in memory: a restart forgets every request.
//   - purgeCache requires a Hawk signature and the scope
//     purge-cache:<workerPoolId>:<cacheName>, judged from the credentials'
//     own scopes (roles are not expanded); purgeRequests and
//     allPurgeRequests only require a valid signature, as the dev queue's
//     scoped endpoints do (a worker holds purge-cache:purge-requests::<pool>
//     through its worker-pool role in a real deployment, and devstack has no
//     roles).
//   - purgeRequests answers from the current state, not from a copy cached
//     for a few seconds.
//   - allPurgeRequests answers every request at once, with no
//     continuationToken.
package devpurgecache
