package schedulerdb

// Injections on MySQL are written in batches. Inject calls that arrive
// while a batch is being written wait for the next one, which takes them
// all: one set of named locks, one transaction and one multi-row INSERT per
// table, instead of ten statements and a commit per task. A lone call is
// a batch of one, so batching adds no wait when the bridge is quiet.
//
// Row ids come from the multi-row INSERTs: with innodb_autoinc_lock_mode 0
// or 1 (MariaDB's default) the rows of one statement get consecutive ids
// (auto_increment_increment apart) starting at LAST_INSERT_ID(). With mode
// 2 (interleaved) they may not, so a batch then inserts row by row, still
// under one transaction.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/labrunner/labrunner/internal/batch"
)

const (
	// maxBatch bounds the injections of one batch (and so the size of its
	// statements: properties are at most ~1 KiB each).
	maxBatch = 100
	// maxBatchesInFlight lets a second batch start while one waits on a
	// lock another instance holds.
	maxBatchesInFlight = 2
	// batchTimeout bounds one batch, retries included; the batch does not
	// follow any one caller's context, since it writes for all of them.
	batchTimeout = 2 * time.Minute
)

// injectCall is one Inject waiting for its batch.
type injectCall struct {
	in   Injection
	rows *injectionRows
	out  Injected
	err  error
	done chan struct{}
}

// autoIncrement is how MySQL hands out ids to a multi-row INSERT.
type autoIncrement struct {
	consecutive bool  // ids of one statement are first, first+step, …
	step        int64 // auto_increment_increment
}

// injectBatched queues call and waits for the batch that writes it.
func (db *DB) injectBatched(ctx context.Context, call *injectCall) (Injected, error) {
	call.done = make(chan struct{})
	db.injections.Add(call)
	select {
	case <-call.done:
		return call.out, call.err
	case <-ctx.Done():
		// The batch may still write it; a later Inject finds it.
		return Injected{}, ctx.Err()
	}
}

// newInjectQueue batches injections for db.
func newInjectQueue(db *DB) *batch.Queue[*injectCall] {
	return &batch.Queue[*injectCall]{Max: maxBatch, Flights: maxBatchesInFlight, Write: db.writeBatch}
}

// writeBatch writes a batch and answers its calls. When the batch as a
// whole fails, each call is written on its own, so that one injection the
// database refuses fails only its own caller.
func (db *DB) writeBatch(batch []*injectCall) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	err := db.injectMany(ctx, batch)
	for _, c := range batch {
		if err != nil && len(batch) > 1 {
			c.out, c.err = db.injectOne(ctx, c.in, c.rows)
		} else if err != nil {
			c.err = err
		}
		close(c.done)
	}
}

// injectMany writes every call of batch in one transaction under the named
// locks of all their tasks, filling in each call's out.
func (db *DB) injectMany(ctx context.Context, batch []*injectCall) error {
	// The same run twice in one batch is injected once; both get the result.
	byKey := map[string][]*injectCall{}
	var keys, locks []string
	for _, c := range batch {
		k := c.rows.key()
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], c)
	}
	lockSet := map[string]bool{}
	for _, c := range batch {
		name := lockName("inject:" + c.in.TaskID)
		if !lockSet[name] {
			lockSet[name] = true
			locks = append(locks, name)
		}
	}
	// Taken in one order by every batch, so two batches cannot deadlock.
	slices.Sort(locks)
	ai := db.autoIncrementRule(ctx)
	err := db.retry(ctx, func() error {
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		release, err := mysqlLocks(ctx, conn, locks)
		if err != nil {
			return err
		}
		defer release()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		found, err := findInjections(ctx, tx, batch)
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		var missing []*injectionRows
		for _, k := range keys {
			if _, ok := found[k]; !ok {
				missing = append(missing, byKey[k][0].rows)
			}
		}
		written, err := insertMany(ctx, tx, missing, ai)
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		for _, k := range keys {
			out, ok := found[k]
			if !ok {
				out = written[k]
			}
			for i, c := range byKey[k] {
				c.out = out
				// A second call for the same run finds the first one's.
				c.out.Existed = out.Existed || i > 0
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("schedulerdb: inject %d tasks: %w", len(keys), err)
	}
	return nil
}

// key names the injection of one task run.
func (r *injectionRows) key() string {
	return fmt.Sprintf("%s@%d", r.externalID, r.submittedAt)
}

// findInjections returns the earlier injections of the batch's runs, by key.
func findInjections(ctx context.Context, q querier, batch []*injectCall) (map[string]Injected, error) {
	marks := make([]string, len(batch))
	args := make([]any, len(batch))
	want := map[string]bool{}
	for i, c := range batch {
		marks[i], args[i] = "?", c.rows.externalID
		want[c.rows.key()] = true
	}
	rows, err := q.QueryContext(ctx, `SELECT id, sourcestampid, external_idstring, submitted_at FROM buildsets
		WHERE external_idstring IN (`+strings.Join(marks, ", ")+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("look for earlier injections: %w", err)
	}
	found := map[string]Injected{}
	byBuildset := map[int64]string{}
	for rows.Next() {
		var in Injected
		var ext string
		var submitted int64
		if err := rows.Scan(&in.BuildsetID, &in.SourcestampID, &ext, &submitted); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("read earlier injections: %w", err)
		}
		k := (&injectionRows{externalID: ext, submittedAt: submitted}).key()
		if _, seen := found[k]; seen || !want[k] {
			continue
		}
		found[k] = in
		byBuildset[in.BuildsetID] = k
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read earlier injections: %w", err)
	}
	if len(found) == 0 {
		return found, nil
	}
	marks, args = marks[:0], args[:0]
	for id := range byBuildset {
		marks, args = append(marks, "?"), append(args, id)
	}
	rows, err = q.QueryContext(ctx, `SELECT buildsetid, MIN(id) FROM buildrequests
		WHERE buildsetid IN (`+strings.Join(marks, ", ")+`) GROUP BY buildsetid`, args...)
	if err != nil {
		return nil, fmt.Errorf("look for the requests of earlier injections: %w", err)
	}
	withRequest := map[string]Injected{}
	for rows.Next() {
		var bs, br int64
		if err := rows.Scan(&bs, &br); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("read the requests of earlier injections: %w", err)
		}
		k := byBuildset[bs]
		in := found[k]
		in.BRID, in.Existed = br, true
		withRequest[k] = in
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read the requests of earlier injections: %w", err)
	}
	// A buildset without a request was not written by Inject, which adds
	// both in one transaction; it does not count as an injection.
	return withRequest, nil
}

// insertMany writes the rows of every injection in rs and returns what
// each wrote, by key.
func insertMany(ctx context.Context, q querier, rs []*injectionRows, ai autoIncrement) (map[string]Injected, error) {
	out := make(map[string]Injected, len(rs))
	if len(rs) == 0 {
		return out, nil
	}
	if !ai.consecutive || len(rs) == 1 {
		for _, r := range rs {
			var in Injected
			if err := r.insert(ctx, q, &in); err != nil {
				return nil, err
			}
			out[r.key()] = in
		}
		return out, nil
	}
	ids := func(first int64, i int) int64 { return first + int64(i)*ai.step }

	args := make([]any, 0, 4*len(rs))
	for _, r := range rs {
		args = append(args, r.branch, r.revision, r.repository, r.project)
	}
	first, err := insertRows(ctx, q, "INSERT INTO sourcestamps (branch, revision, patchid, repository, project) VALUES ", "(?, ?, NULL, ?, ?)", len(rs), args)
	if err != nil {
		return nil, fmt.Errorf("insert sourcestamps: %w", err)
	}
	ins := make([]Injected, len(rs))
	args = args[:0]
	for i, r := range rs {
		ins[i].SourcestampID = ids(first, i)
		args = append(args, r.externalID, r.reason, ins[i].SourcestampID, r.submittedAt)
	}
	if first, err = insertRows(ctx, q, "INSERT INTO buildsets (external_idstring, reason, sourcestampid, submitted_at, complete) VALUES ", "(?, ?, ?, ?, 0)", len(rs), args); err != nil {
		return nil, fmt.Errorf("insert buildsets: %w", err)
	}
	args = args[:0]
	nProps := 0
	for i, r := range rs {
		ins[i].BuildsetID = ids(first, i)
		for j := range r.names {
			args = append(args, ins[i].BuildsetID, r.names[j], r.values[j])
			nProps++
		}
	}
	if _, err = insertRows(ctx, q, "INSERT INTO buildset_properties (buildsetid, property_name, property_value) VALUES ", "(?, ?, ?)", nProps, args); err != nil {
		return nil, fmt.Errorf("insert properties: %w", err)
	}
	args = args[:0]
	for i, r := range rs {
		args = append(args, ins[i].BuildsetID, r.builderName, r.priority, r.submittedAt)
	}
	if first, err = insertRows(ctx, q, "INSERT INTO buildrequests (buildsetid, buildername, priority, claimed_at, complete, submitted_at) VALUES ", "(?, ?, ?, 0, 0, ?)", len(rs), args); err != nil {
		return nil, fmt.Errorf("insert buildrequests: %w", err)
	}
	for i, r := range rs {
		ins[i].BRID = ids(first, i)
		out[r.key()] = ins[i]
	}
	return out, nil
}

// insertRows runs one multi-row INSERT of n rows and returns the first id.
func insertRows(ctx context.Context, q querier, head, row string, n int, args []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	res, err := q.ExecContext(ctx, head+strings.Repeat(row+", ", n-1)+row, args...)
	if err != nil {
		return 0, err
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(n) {
		return 0, fmt.Errorf("%d of %d rows written (%v)", got, n, err)
	}
	return res.LastInsertId()
}

// autoIncrementRule tells how this server numbers multi-row INSERTs.
func (db *DB) autoIncrementRule(ctx context.Context) autoIncrement {
	consecutive, step := db.autoInc.Get(ctx, db.sql)
	return autoIncrement{consecutive: consecutive, step: step}
}
