package provisioner

// "Why is this task not running?" asked about a black-hole canary: a task
// id the queue never had (the provisioner made it up when it sent the
// canary, docs/provisioner.md, "Black holes"), which an operator copies
// from a quarantine's reason. The answer names the machine, the canary's
// result and where its log is.

import (
	"context"
	"errors"
	"fmt"

	"github.com/labrunner/labrunner/provisioner/client"
)

// explainCanary answers for a canary the queue does not know; false when
// a.TaskID is not a canary any machine reported.
func (s *Server) explainCanary(ctx context.Context, a *client.WhyAnswer) bool {
	c, err := s.store.LatestCanary(ctx, "", a.TaskID)
	if errors.Is(err, ErrNotFound) {
		return false
	}
	if err != nil {
		a.Errors = append(a.Errors, err.Error())
		return false
	}
	result := canaryResult(c.RunReport)
	st, fin := c.Started, c.Finished
	a.State = "canary"
	// The queue's 404 is expected: a canary runs with no queue.
	a.Errors = nil
	a.Summary = fmt.Sprintf("Task %s is a black-hole canary, not a queue task: machine %s ran it while quarantined (%s).", a.TaskID, c.MachineID, result)
	a.Runs = append(a.Runs, client.WhyRun{RunID: c.RunID, State: "canary " + result, Started: &st, Resolved: &fin, MachineID: c.MachineID})
	a.Explanation = append(a.Explanation,
		fmt.Sprintf("Machine %s of pool %s ran it from %s to %s with no queue behind it; the provisioner judged the machine on its result.", c.MachineID, c.PoolID, stamp(st), stamp(fin)),
		fmt.Sprintf("The end of its log is on machine %s's dashboard page, and in lastCanary of GET /api/v1/machines/%s, while it is the machine's latest canary.", c.MachineID, c.MachineID))
	return true
}
