package store

// On MySQL, Create and BindBuildRequest calls made while another is being
// written wait and are written together (internal/batch), for the reason
// schedulerdb batches injections: each statement costs MySQL far more than
// the row it changes. A batch the database refuses as a whole is written
// again one call at a time, which gives each caller its own answer.

import (
	"context"
	"strings"
	"time"

	"github.com/labrunner/labrunner/internal/batch"
)

const (
	maxStoreBatch = 100
	storeFlights  = 2
	storeTimeout  = time.Minute
)

// createCall is one Create waiting for its batch.
type createCall struct {
	nt      NewTask
	created int64
	out     Task
	isNew   bool
	err     error
	done    chan struct{}
}

// bindCall is one BindBuildRequest waiting for its batch.
type bindCall struct {
	taskID string
	runID  int
	brid   int64
	err    error
	done   chan struct{}
}

// batches are the store's MySQL batch queues.
type batches struct {
	creates *batch.Queue[*createCall]
	binds   *batch.Queue[*bindCall]
}

func newBatches(s *Store) batches {
	return batches{
		creates: &batch.Queue[*createCall]{Max: maxStoreBatch, Flights: storeFlights, Write: s.writeCreates},
		binds:   &batch.Queue[*bindCall]{Max: maxStoreBatch, Flights: storeFlights, Write: s.writeBinds},
	}
}

// createBatched queues call and waits for the batch that writes it.
func (s *Store) createBatched(ctx context.Context, call *createCall) (Task, bool, error) {
	call.done = make(chan struct{})
	s.batches.creates.Add(call)
	select {
	case <-call.done:
		return call.out, call.isNew, call.err
	case <-ctx.Done():
		// The batch may still insert the row; a later Create finds it.
		return Task{}, false, ctx.Err()
	}
}

// writeCreates inserts the rows of batch in one multi-row INSERT. Any
// duplicate makes MySQL refuse the whole statement, and then every call
// goes the single-row way, which tells new rows from existing ones. The
// ids are read off LAST_INSERT_ID() only where the server numbers the rows
// of a statement consecutively.
func (s *Store) writeCreates(calls []*createCall) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	done := false
	if consecutive, step := s.autoInc.Get(ctx, s.sql); consecutive && len(calls) > 1 {
		processed := s.epoch()
		rows := make([]string, len(calls))
		args := make([]any, 0, 4*len(calls))
		for i, c := range calls {
			rows[i] = "(?, ?, ?, ?)"
			args = append(args, c.nt.TaskID, c.nt.RunID, c.created, processed)
		}
		res, err := s.sql.ExecContext(ctx, "INSERT INTO tasks (taskId, runId, createdDate, processedDate) VALUES "+strings.Join(rows, ", "), args...)
		if err == nil {
			n, nerr := res.RowsAffected()
			first, ferr := res.LastInsertId()
			if nerr == nil && ferr == nil && n == int64(len(calls)) {
				for i, c := range calls {
					c.out = Task{ID: first + int64(i)*step, TaskID: c.nt.TaskID, RunID: c.nt.RunID, CreatedDate: c.created, ProcessedDate: processed}
					c.isNew = true
				}
				done = true
			}
		}
	}
	for _, c := range calls {
		if !done {
			c.out, c.isNew, c.err = s.createOne(ctx, c.nt, c.created)
		}
		close(c.done)
	}
}

// bindBatched queues call and waits for the batch that writes it.
func (s *Store) bindBatched(ctx context.Context, call *bindCall) error {
	call.done = make(chan struct{})
	s.batches.binds.Add(call)
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeBinds sets the build request of every row of calls that has none
// in one UPDATE. When fewer rows change than there are calls, each call is
// checked on its own, which tells bound-already, missing and conflict apart.
func (s *Store) writeBinds(calls []*bindCall) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	var n int64
	var err error
	if len(calls) > 1 {
		cases := make([]string, len(calls))
		where := make([]string, len(calls))
		var args, whereArgs []any
		for i, c := range calls {
			cases[i], where[i] = "WHEN taskId = ? AND runId = ? THEN ?", "(taskId = ? AND runId = ?)"
			args = append(args, c.taskID, c.runID, c.brid)
			whereArgs = append(whereArgs, c.taskID, c.runID)
		}
		n, err = s.exec(ctx, "UPDATE tasks SET buildrequestId = CASE "+strings.Join(cases, " ")+
			" END WHERE buildrequestId IS NULL AND ("+strings.Join(where, " OR ")+")", append(args, whereArgs...)...)
	}
	for _, c := range calls {
		if len(calls) == 1 || err != nil || n != int64(len(calls)) {
			c.err = s.bindOne(ctx, c.taskID, c.runID, c.brid)
		}
		close(c.done)
	}
}
