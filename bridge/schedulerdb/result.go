package schedulerdb

import "fmt"

// Result is a Buildbot build result code (buildbot/status/builder.py; CANCELLED
// exists only in Mozilla's fork).
type Result int

// Result codes stored in buildrequests.results and buildsets.results.
const (
	Success   Result = 0
	Warnings  Result = 1
	Failure   Result = 2
	Skipped   Result = 3
	Exception Result = 4
	Retry     Result = 5
	Cancelled Result = 6
)

var resultNames = [...]string{"SUCCESS", "WARNINGS", "FAILURE", "SKIPPED", "EXCEPTION", "RETRY", "CANCELLED"}

// String returns the Buildbot name of the result, or "UNKNOWN(n)".
func (r Result) String() string {
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("UNKNOWN(%d)", int(r))
}

// Known reports whether r is one of the seven codes Buildbot defines.
func (r Result) Known() bool { return r >= 0 && int(r) < len(resultNames) }
