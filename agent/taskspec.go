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
	if err := checkTaskUserScopes(p, task); err != nil {
		return nil, err
	}
	return p, nil
}

// taskPool is the task's <provisionerId>/<workerType>, the pool part of
// generic-worker's scopes (its task queue id).
func taskPool(task *tcqueue.TaskDefinitionResponse) string {
	if task.ProvisionerID != "" && task.WorkerType != "" {
		return task.ProvisionerID + "/" + task.WorkerType
	}
	return task.TaskQueueID
}

// TaskUserScopes are the scopes a payload's task-user features need in
// pool, spelled as generic-worker checks them
// (workers/generic-worker/os_groups.go and runasadministrator_windows.go
// at v44.23.4).
func TaskUserScopes(p *Payload, pool string) []string {
	var out []string
	for _, g := range p.OSGroups {
		out = append(out, "generic-worker:os-group:"+pool+"/"+g)
	}
	if p.RunAsAdministrator {
		out = append(out, "generic-worker:run-as-administrator:"+pool)
	}
	return out
}

// checkTaskUserScopes refuses osGroups and features.runAsAdministrator
// without their scopes in the task's scopes.
func checkTaskUserScopes(p *Payload, task *tcqueue.TaskDefinitionResponse) error {
	var problems []Problem
	for _, need := range TaskUserScopes(p, taskPool(task)) {
		if !scopeHeld(task.Scopes, need) {
			field := "payload.osGroups"
			if strings.HasPrefix(need, "generic-worker:run-as-administrator:") {
				field = "payload.features.runAsAdministrator"
			}
			problems = append(problems, Problem{Field: "task.scopes", Message: fmt.Sprintf(
				"lacks %s, which %s needs; add the scope to the task's scopes", need, field)})
		}
	}
	if len(problems) > 0 {
		return &PayloadError{Problems: problems}
	}
	return nil
}

// scopeHeld says whether held satisfies need (exactly, or by a trailing
// * as Taskcluster's scope expressions do).
func scopeHeld(held []string, need string) bool {
	for _, h := range held {
		if h == need || strings.HasSuffix(h, "*") && strings.HasPrefix(need, h[:len(h)-1]) {
			return true
		}
	}
	return false
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
