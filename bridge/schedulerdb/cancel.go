package schedulerdb

// The self-serve agent's cancel (build-buildapi's
// buildapi/scripts/selfserve-agent.py; docs/bridge.md, "SchedulerDB", Cancel),
// applied directly when no self-serve is configured:
//
//	request missing               -> ErrNotFound
//	complete with complete_at     -> AlreadyComplete ("nothing to do")
//	claimed (claimed_at != 0)     -> Running: the caller must stop the builds
//	otherwise                     -> complete=1, results=FAILURE, complete_at=now
//
// The last step is a compare and swap on claimed_at = 0, so a master that
// claims the request at the same moment wins or loses cleanly: the request
// is either cancelled or reported Running, never both.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CancelState is what a cancel found and did.
type CancelState int

// Outcomes of CancelRequest and CancelBuild.
const (
	// CancelledPending: the unclaimed request is now complete with FAILURE.
	CancelledPending CancelState = iota + 1
	// AlreadyComplete: nothing to do.
	AlreadyComplete
	// Running: a master holds the request; its unfinished builds must be
	// stopped, after which the master completes it with CANCELLED.
	Running
)

// String names the state for logs.
func (s CancelState) String() string {
	switch s {
	case CancelledPending:
		return "cancelled-pending"
	case AlreadyComplete:
		return "already-complete"
	case Running:
		return "running"
	}
	return fmt.Sprintf("CancelState(%d)", int(s))
}

// CancelOutcome reports a cancel's effect; Builds are the unfinished builds
// to stop when State is Running.
type CancelOutcome struct {
	State   CancelState
	Request BuildRequest
	Builds  []Build
}

// cancelAttempts bounds the re-reads when the request changes under a cancel.
const cancelAttempts = 5

// CancelRequest applies self-serve's cancel_request to build request brid.
func (db *DB) CancelRequest(ctx context.Context, brid int64) (CancelOutcome, error) {
	for attempt := 0; attempt < cancelAttempts; attempt++ {
		r, err := db.BuildRequest(ctx, brid)
		if err != nil {
			return CancelOutcome{}, err
		}
		switch {
		case r.Complete && r.CompleteAt != nil:
			return CancelOutcome{State: AlreadyComplete, Request: r}, nil
		case r.ClaimedAt != 0:
			builds, err := db.unfinishedBuilds(ctx, brid)
			if err != nil {
				return CancelOutcome{}, err
			}
			return CancelOutcome{State: Running, Request: r, Builds: builds}, nil
		}
		var n int64
		now := db.epoch()
		err = db.retry(ctx, func() error {
			res, err := db.sql.ExecContext(ctx, `UPDATE buildrequests SET complete = 1, results = ?, complete_at = ?
				WHERE id = ? AND claimed_at = 0 AND (complete = 0 OR complete_at IS NULL)`, int(Failure), now, brid)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return CancelOutcome{}, fmt.Errorf("schedulerdb: cancel buildrequest %d: %w", brid, err)
		}
		if n == 1 {
			r.Complete, r.CompleteAt = true, &now
			res := Failure
			r.Results = &res
			return CancelOutcome{State: CancelledPending, Request: r}, nil
		}
	}
	return CancelOutcome{}, fmt.Errorf("schedulerdb: cancel buildrequest %d: it kept changing during %d attempts", brid, cancelAttempts)
}

// ErrNotClaimed is returned by CancelBuild for a build whose request no
// master holds, as self-serve's agent refuses it.
var ErrNotClaimed = errors.New("schedulerdb: build's request is not claimed")

// CancelBuild applies self-serve's cancel_build to build id: the request of
// a running build is reported Running with that build to stop.
func (db *DB) CancelBuild(ctx context.Context, buildID int64) (CancelOutcome, error) {
	var (
		b   Build
		r   BuildRequest
		fin sql.NullInt64
	)
	err := db.retry(ctx, func() error {
		row := db.sql.QueryRowContext(ctx, `SELECT b.id, b.number, b.brid, b.start_time, b.finish_time, `+buildRequestColumns+`
			FROM builds b JOIN buildrequests br ON br.id = b.brid WHERE b.id = ?`, buildID)
		var (
			claimedAt, complete sql.NullInt64
			name, inc           sql.NullString
			results, completeAt sql.NullInt64
		)
		if err := row.Scan(&b.ID, &b.Number, &b.BRID, &b.StartTime, &fin,
			&r.ID, &r.BuildsetID, &r.BuilderName, &r.Priority, &claimedAt, &name, &inc,
			&complete, &results, &r.SubmittedAt, &completeAt); err != nil {
			return err
		}
		b.FinishTime = nullInt(fin)
		r.ClaimedAt, r.ClaimedByName, r.ClaimedByIncarnation = claimedAt.Int64, name.String, inc.String
		r.Complete, r.Results, r.CompleteAt = complete.Int64 != 0, nullResult(results), nullInt(completeAt)
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return CancelOutcome{}, fmt.Errorf("schedulerdb: build %d: %w", buildID, ErrNotFound)
	}
	if err != nil {
		return CancelOutcome{}, fmt.Errorf("schedulerdb: read build %d: %w", buildID, err)
	}
	switch {
	case r.Complete && r.CompleteAt != nil:
		return CancelOutcome{State: AlreadyComplete, Request: r}, nil
	case r.ClaimedAt == 0:
		return CancelOutcome{Request: r}, fmt.Errorf("schedulerdb: cancel build %d of buildrequest %d: %w", buildID, r.ID, ErrNotClaimed)
	}
	var builds []Build
	if b.FinishTime == nil {
		builds = []Build{b}
	}
	return CancelOutcome{State: Running, Request: r, Builds: builds}, nil
}

func (db *DB) unfinishedBuilds(ctx context.Context, brid int64) ([]Build, error) {
	all, err := db.Builds(ctx, brid)
	if err != nil {
		return nil, err
	}
	var out []Build
	for _, b := range all {
		if b.FinishTime == nil {
			out = append(out, b)
		}
	}
	return out, nil
}
