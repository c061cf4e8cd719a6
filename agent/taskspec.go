package agent

// What the agent checks about a payload beyond its schema (payload.go):
// the rules that need the task definition, as generic-worker applies them
// before running anything.

import (
	"fmt"
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
	deadline, expires := time.Time(task.Deadline), time.Time(task.Expires)
	var problems []Problem
	for i, a := range p.Artifacts {
		if a.Expires.IsZero() {
			continue
		}
		// generic-worker refuses artifacts that would vanish before the
		// task's deadline or outlive the task.
		if !deadline.IsZero() && a.Expires.Before(deadline) {
			problems = append(problems, Problem{Field: fmt.Sprintf("payload.artifacts[%d].expires", i), Message: fmt.Sprintf("%s is before the task deadline %s; use a later time or omit it", a.Expires.Format(time.RFC3339), deadline.Format(time.RFC3339))})
		}
		if !expires.IsZero() && a.Expires.After(expires) {
			problems = append(problems, Problem{Field: fmt.Sprintf("payload.artifacts[%d].expires", i), Message: fmt.Sprintf("%s is after the task's expiry %s; use an earlier time or omit it", a.Expires.Format(time.RFC3339), expires.Format(time.RFC3339))})
		}
	}
	if len(problems) > 0 {
		return nil, &PayloadError{Problems: problems}
	}
	return p, nil
}
