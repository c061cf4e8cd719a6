// Package tcproxy is the per-task taskcluster-proxy: an HTTP server on
// 127.0.0.1 (random port) that signs every request a task sends it with the
// run's temporary credentials and forwards it to the deployment, so that task
// code can call Taskcluster without holding credentials.
//
// It serves the API of generic-worker v44's proxy
// (tools/taskcluster-proxy/routes.go at v44.23.4):
//
//	/api/<service>/<version>/<path>  signed and forwarded to <rootURL>/api/<service>/<version>/<path>
//	/<service>/<version>/<path>      the same, the older form (taskcluster/services.go)
//	/bewit       POST a URL, get 303 to it with a bewit valid for 1 hour
//	/credentials PUT {clientId, accessToken, certificate} to replace the credentials
//
// The agent starts one Proxy per task that sets features.taskclusterProxy
// and replaces its credentials at every reclaim. The room owns the proxy
// only: it may import internal/* packages, not the agent.
package tcproxy
