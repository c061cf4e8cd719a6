package devqueue

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
// are no longer blocked. Call it under s.mu.
func (s *Server) resolveDependents(taskID, resolution string) {
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
