package provisioner

import (
	"fmt"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// workerScopes are the scopes a machine's temporary credentials carry:
// worker-manager's list (services/worker-manager/src/util.js
// createCredentials) without the worker-manager:* scopes, since machines
// re-register with the provisioner instead.
func workerScopes(taskQueueID, workerGroup, workerID string) []string {
	wp := taskQueueID
	return []string{
		"assume:worker-type:" + wp,
		"assume:worker-pool:" + wp,
		"assume:worker-id:" + workerGroup + "/" + workerID,
		"queue:worker-id:" + workerGroup + "/" + workerID,
		"secrets:get:worker-type:" + wp,
		"secrets:get:worker-pool:" + wp,
		"queue:claim-work:" + wp,
	}
}

// issueCredentials returns temporary credentials for machineID in pool, or
// nil when the pool has no Taskcluster side (source buildbot) or no
// permanent credentials.
func (s *Server) issueCredentials(pool *client.Pool, machineID string) (*client.TaskclusterCredentials, error) {
	if pool == nil || !client.HasTaskcluster(pool.Spec.Source) {
		return nil, nil
	}
	perm := s.tc.credentials(pool.PoolID)
	if perm == nil {
		return nil, nil
	}
	lifetime := s.cfg.CredentialLifetime
	tmp, err := perm.CreateTemporaryCredentials(lifetime, workerScopes(pool.Spec.TaskQueueID, pool.Spec.WorkerGroup, machineID)...)
	if err != nil {
		return nil, fmt.Errorf("issue credentials for %s in %s: %w", machineID, pool.PoolID, err)
	}
	return &client.TaskclusterCredentials{
		ClientID:    tmp.ClientID,
		AccessToken: tmp.AccessToken,
		Certificate: tmp.Certificate,
		// client-go starts the certificate at its own time.Now; the expiry
		// here uses the same clock so renewal is never late.
		Expires: time.Now().Add(lifetime).UTC(),
	}, nil
}

// assignment builds what a machine needs to serve pool (nil pool: none).
func (s *Server) assignment(pool *client.Pool, machineID string) (client.Assignment, error) {
	if pool == nil {
		return client.Assignment{RootURL: s.cfg.RootURL, WorkerID: machineID}, nil
	}
	creds, err := s.issueCredentials(pool, machineID)
	if err != nil {
		return client.Assignment{}, err
	}
	return client.Assignment{
		PoolID:       pool.PoolID,
		Source:       pool.Spec.Source,
		TaskQueueID:  pool.Spec.TaskQueueID,
		Builders:     pool.Spec.Builders,
		WorkerGroup:  pool.Spec.WorkerGroup,
		WorkerID:     machineID,
		WorkerConfig: pool.Spec.WorkerConfig,
		Reboot:       pool.Spec.Reboot,
		Health:       pool.Spec.Health,
		RootURL:      s.cfg.RootURL,
		Credentials:  creds,
	}, nil
}
