package agent

import (
	"errors"
	"testing"
)

func TestDecide(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		o      outcome
		want   Resolution
		report bool
	}{
		{"exit 0", outcome{exitCode: 0}, Completed, true},
		{"exit 1", outcome{exitCode: 1}, Failed, true},
		{"retry code", outcome{exitCode: 42}, Exception(ReasonIntermittentTask), true},
		{"timeout", outcome{exitCode: -1, timedOut: true}, Failed, true},
		{"missing artifact", outcome{exitCode: 0, missingOutput: true}, Failed, true},
		{"shutdown", outcome{exitCode: -1, shutdown: true}, Exception(ReasonWorkerShutdown), true},
		{"resource", outcome{resource: boom}, Exception(ReasonResourceUnavailable), true},
		{"internal", outcome{internal: boom}, Exception(ReasonInternalError), true},
		{"malformed", outcome{malformed: boom}, Exception(ReasonMalformedPayload), true},
		{"gone beats all", outcome{gone: true, shutdown: true, exitCode: 1}, Resolution{}, false},
	} {
		got, report := decide(tc.o, []int{42})
		if got != tc.want || report != tc.report {
			t.Errorf("%s: decide = %v, %v; want %v, %v", tc.name, got, report, tc.want, tc.report)
		}
	}
}
