package agent

// What the agent checks about a payload: its schema (payload.go), then the
// rules that need the task definition, as generic-worker applies them
// before running anything.

import (
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// parseTaskPayload validates the task's payload; the error names the bad
// field and the fix.
func parseTaskPayload(task *tcqueue.TaskDefinitionResponse) (*Payload, error) {
	p, err := ParsePayload(task.Payload)
	if err != nil {
		return nil, err
	}
	if err := p.CheckArtifactExpiry(time.Time(task.Deadline), time.Time(task.Expires)); err != nil {
		return nil, err
	}
	return p, nil
}
