// Package provisioner keeps the registry of lab machines, the pool
// definitions, assigns machines to pools from demand, hands out temporary
// Taskcluster credentials and serves the pool-sizing API and the operators'
// dashboard (sign-in, pages, actions: docs/dashboard.md). New builds a
// Server; Handler serves /api/v1/…, /openapi.json, /metrics and
// /dashboard; Run drives the assigner and the background loops. provisioner/client is its Go client
// and holds the wire types.
package provisioner
