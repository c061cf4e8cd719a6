package provisioner

// A machine's latest black-hole canary on its dashboard page: the result
// that lifted or renewed its quarantine, and the tail of the canary's log
// as the runner sent it (docs/provisioner.md, "Black holes"). The log is
// the canary's output, shown as text: the template escapes it.

import (
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// canaryView is a machine's latest canary.
type canaryView struct {
	TaskID, Result, Finished, Took string
	Passed                         bool
	// Log is the tail of its output (the runner's first line says when
	// earlier output was left out).
	Log string
}

// newCanaryView shows r (nil: no canary kept).
func newCanaryView(r *client.RunReport, now time.Time) *canaryView {
	if r == nil {
		return nil
	}
	took := r.Finished.Sub(r.Started)
	if took < 10*time.Second {
		took = took.Round(time.Millisecond)
	} else {
		took = took.Round(time.Second)
	}
	return &canaryView{TaskID: r.TaskID, Result: canaryResult(*r), Passed: r.Result == client.ResultCompleted,
		Finished: stamp(r.Finished) + " (" + ago(now, r.Finished) + ")", Took: took.String(), Log: r.Log}
}
