// Package faultproxy is an HTTP reverse proxy that injects network faults
// between a client and a service, for the fault tests: it can be cut
// (every connection reset), fail a fraction of requests (an HTTP error
// status, or a connection reset before or after the service acted) and
// slow a fraction, all drawn from a seeded random source, and it counts
// what it did. It owns nothing else and imports only the standard library.
package faultproxy
