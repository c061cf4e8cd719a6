package bridge

import (
	"testing"

	"github.com/labrunner/labrunner/bridge/client"
)

// A builder whose name has dots: the log_uploaded routing key keeps the
// name, so it spans several words and the bindings must still match it.
func TestBuilderNameWithDots(t *testing.T) {
	forEachSetup(t, func(t *testing.T, s setup) {
		const builder = "WINNT 10.0 x64 mozilla-central opt test"
		builders := testBuilders()
		builders[builder] = builders[goodBuilder]
		e := newEnv(t, s, envOpts{builders: builders})
		rb := e.start()
		taskID := e.createTask(payload(builder), nil)
		e.waitRow(taskID)
		a := e.agent(rb, "agent-1")
		a.claim(builder)
		e.waitRun(taskID, 0, "running", "")
		a.finish(client.Success, nil, "https://logs.example.com/1.log.gz")
		e.waitRun(taskID, 0, "completed", "completed")
	})
}
