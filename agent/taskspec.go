package agent

// What the agent checks about a payload: its schema (payload.go), then the
// rules that need the task definition, as generic-worker applies them
// before running anything.

import (
	"fmt"
	"strings"
	"time"

	"github.com/labrunner/labrunner/agent/mounts"

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
	if err := checkMountGrants(p, task); err != nil {
		return nil, err
	}
	return p, nil
}

// checkMountGrants applies generic-worker's mount rules that need the task
// definition: a writable cache needs generic-worker:cache:<cacheName> in
// the task's scopes, and a task whose artifact is mounted must be one of
// the task's dependencies (workers/generic-worker/mounts.go at v44.23.4).
func checkMountGrants(p *Payload, task *tcqueue.TaskDefinitionResponse) error {
	var problems []Problem
	for _, scope := range mounts.MissingScopes(p.Mounts, task.Scopes) {
		problems = append(problems, Problem{Field: "task.scopes", Message: fmt.Sprintf(
			"lacks %s, which payload.mounts needs for its writable cache %q; add the scope to the task's scopes",
			scope, strings.TrimPrefix(scope, "generic-worker:cache:"))})
	}
	for _, id := range mounts.MissingDependencies(p.Mounts, task.Dependencies) {
		problems = append(problems, Problem{Field: "task.dependencies", Message: fmt.Sprintf(
			"needs to include %s since one or more of its artifacts are mounted; add it to the task's dependencies", id)})
	}
	if len(problems) > 0 {
		return &PayloadError{Problems: problems}
	}
	return nil
}
