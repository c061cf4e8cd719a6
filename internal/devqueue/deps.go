package devqueue

import (
	"encoding/json"

	"github.com/labrunner/labrunner/internal/pulse"
)

// Dependencies follow services/queue/src/dependencytracker.js: a task with
// dependencies stays unscheduled until every dependency is satisfied —
// completed for requires=all-completed, resolved in any way for
// all-resolved. A dependency that fails or ends in exception never
// satisfies an all-completed task, which then stays unscheduled until
// scheduleTask or its deadline. A task may depend on itself; it then waits
// for scheduleTask.

// trackDependencies records t's dependencies and which of them still block
// it; call it under s.mu.
func (s *Server) trackDependencies(t *task) {
	for _, dep := range t.Def.Dependencies {
		s.dependents[dep] = append(s.dependents[dep], t.ID)
		d := s.tasks[dep]
		if d != nil && satisfies(d.state(), t.Def.Requires) {
			continue
		}
		t.Blocking[dep] = true
	}
}

func satisfies(state, requires string) bool {
	switch state {
	case "completed":
		return true
	case "failed", "exception":
		return requires == "all-resolved"
	}
	return false
}

// resolveDependents is called when taskID resolves (no new run) with
// resolution completed, failed or exception; it schedules dependents that
// are no longer blocked and announces the task group when none of its tasks
// remains unresolved. Call it under s.mu.
func (s *Server) resolveDependents(taskID, resolution string) {
	defer s.updateGroup(taskID)
	for _, id := range s.dependents[taskID] {
		d := s.tasks[id]
		if d == nil || !d.Blocking[taskID] || !satisfies(resolution, d.Def.Requires) {
			continue
		}
		delete(d.Blocking, taskID)
		if len(d.Blocking) == 0 {
			s.scheduleDependent(d)
		}
	}
}

// scheduleDependent schedules run 0 unless the deadline has passed
// (DependencyTracker.scheduleTask); call it under s.mu.
func (s *Server) scheduleDependent(t *task) {
	if t.Deadline.Before(s.now()) {
		return
	}
	if s.scheduleRun(t, "scheduled") {
		s.publish("task-pending", t, publishOpts{runID: 0})
	}
}

// updateGroup marks the task as resolved at least once and publishes
// task-group-resolved when no task of its group is left unresolved
// (updateTaskGroupActiveSet). Like the real queue it announces again on
// every later resolution in an inactive group. Call it under s.mu.
func (s *Server) updateGroup(taskID string) {
	t := s.tasks[taskID]
	if t == nil {
		return
	}
	gid := t.Def.TaskGroupID
	if !t.EverResolved {
		t.EverResolved = true
		s.groupActive[gid]--
	}
	if s.groupActive[gid] > 0 {
		return
	}
	body, err := json.Marshal(groupResolvedMessage{Version: 1, TaskGroupID: gid, SchedulerID: t.Def.SchedulerID})
	if err != nil {
		s.log.Error("devqueue: encode task-group-resolved", "error", err)
		return
	}
	s.out.add(pulse.Outgoing{
		Exchange:   exchangePrefix + "task-group-resolved",
		RoutingKey: "primary." + gid + "." + t.Def.SchedulerID + "._",
		Body:       body,
	})
}

// groupResolvedMessage is task-group-resolved.json.
type groupResolvedMessage struct {
	Version     int    `json:"version"`
	TaskGroupID string `json:"taskGroupId"`
	SchedulerID string `json:"schedulerId"`
}
