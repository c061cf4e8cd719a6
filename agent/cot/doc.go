// Package cot makes chain-of-trust documents as generic-worker v44 does
// (workers/generic-worker/chain_of_trust.go at v44.23.4): the JSON document
// public/chain-of-trust.json that lists a run's artifacts with their SHA-256
// digests together with the task definition and the worker's identity, its
// detached ed25519 signature public/chain-of-trust.json.sig, and the
// worker's ed25519 key files (generic-worker's new-ed25519-keypair format:
// the base64 32-byte seed).
//
// The room owns the document, its signing and verification and the key
// files; uploading the artifacts is the agent's. It may import internal/*
// packages, not the agent.
package cot
