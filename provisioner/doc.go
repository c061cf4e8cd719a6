// Package provisioner keeps the registry of lab machines, the pool
// definitions, assigns machines to pools from demand, hands out temporary
// Taskcluster credentials and serves the pool-sizing API. New builds a
// Server; Handler serves /api/v1/…, /openapi.json and /metrics; Run drives
// the assigner and the background loops. provisioner/client is its Go client
// and holds the wire types.
package provisioner
