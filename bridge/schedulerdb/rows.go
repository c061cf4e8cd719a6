package schedulerdb

import "encoding/json"

// BuildRequest is one buildrequests row. NULL strings read as "".
type BuildRequest struct {
	ID                   int64
	BuildsetID           int64
	BuilderName          string
	Priority             int
	ClaimedAt            int64 // epoch seconds; 0 when unclaimed
	ClaimedByName        string
	ClaimedByIncarnation string
	Complete             bool
	Results              *Result // nil until complete
	SubmittedAt          int64
	CompleteAt           *int64
}

// CancelledBeforeStart reports the state that self-serve leaves on a request
// it cancelled while nothing had claimed it, which the reflector turns into a
// cancelTask (docs/bridge.md, "SchedulerDB", Cancel, and "Reflector").
func (r BuildRequest) CancelledBeforeStart() bool { return r.Complete && r.ClaimedAt == 0 }

// Buildset is one buildsets row.
type Buildset struct {
	ID               int64
	ExternalIDString string
	Reason           string
	SourcestampID    int64
	SubmittedAt      int64
	Complete         bool
	CompleteAt       *int64
	Results          *Result
}

// Sourcestamp is one sourcestamps row; Branch and Revision are "" for NULL.
type Sourcestamp struct {
	ID         int64
	Branch     string
	Revision   string
	Repository string
	Project    string
}

// Build is one builds row.
type Build struct {
	ID         int64
	Number     int
	BRID       int64
	StartTime  int64
	FinishTime *int64 // nil while the build runs
}

// Property is one decoded buildset property: the [value, source] pair.
type Property struct {
	Value  json.RawMessage
	Source string
}

// Master identifies the claimer of a build request: claimed_by_name and
// claimed_by_incarnation.
type Master struct {
	Name        string
	Incarnation string
}
