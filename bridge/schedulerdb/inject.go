package schedulerdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// ReasonPrefix starts the fixed buildsets.reason text. Treeherder finds the
// task of a Buildbot build with the regex `Created by BBB for task (.{22})`,
// so the text must never change.
const ReasonPrefix = "Created by BBB for task "

// ExternalIDPrefix starts buildsets.external_idstring for a bridged task.
const ExternalIDPrefix = "taskId:"

// PropertySource is the source BBB records with every property it injects.
const PropertySource = "bbb"

// Injection describes the build request to create for a pending task run.
type Injection struct {
	TaskID      string                     // status.taskId
	BuilderName string                     // payload.buildername
	Sourcestamp *SourcestampSpec           // payload.sourcestamp; nil when the payload has none
	Properties  map[string]json.RawMessage // payload.properties, values passed through as JSON
	Scheduled   time.Time                  // the pending run's `scheduled`; becomes submitted_at
	Priority    string                     // task.priority; only "high" gives priority 1
}

// SourcestampSpec is payload.sourcestamp as the task gives it.
type SourcestampSpec struct {
	Branch     string
	Revision   string
	Repository string
	Project    string
}

// Injected tells what Inject wrote or found.
type Injected struct {
	BRID          int64
	BuildsetID    int64
	SourcestampID int64
	// Existed is true when an earlier Inject for the same task and run had
	// already created the request, which is then returned unchanged.
	Existed bool
}

// Inject writes the Buildbot rows for a pending task run (docs/bridge.md,
// "SchedulerDB", Injection): a
// sourcestamp, a buildset with the fixed reason and external_idstring, its
// properties as [value, "bbb"] pairs with a forced taskId, and one build
// request, in that order and in one transaction.
//
// It is idempotent per (TaskID, Scheduled): injections for the same task are
// serialised, and one that finds a buildset with the same external_idstring
// and submitted_at returns that request instead of creating a second one. A
// crashed or duplicated injection can therefore simply be run again. On
// MySQL, calls made at the same time share one transaction (see
// inject_batch.go); each still gets its own result.
func (db *DB) Inject(ctx context.Context, in Injection) (Injected, error) {
	rows, err := in.render()
	if err != nil {
		return Injected{}, err
	}
	if db.dialect == MySQL {
		return db.injectBatched(ctx, &injectCall{in: in, rows: rows})
	}
	return db.injectOne(ctx, in, rows)
}

// injectOne writes one injection in a transaction of its own.
func (db *DB) injectOne(ctx context.Context, in Injection, rows *injectionRows) (Injected, error) {
	var out Injected
	err := db.withTx(ctx, "inject:"+in.TaskID, func(q querier) error {
		found, err := findInjection(ctx, q, rows.externalID, rows.submittedAt)
		if err != nil || found != nil {
			if found != nil {
				out = *found
			}
			return err
		}
		out = Injected{}
		return rows.insert(ctx, q, &out)
	})
	if err != nil {
		return Injected{}, fmt.Errorf("schedulerdb: inject task %s: %w", in.TaskID, err)
	}
	return out, nil
}

// InjectedRequest returns the request an earlier Inject wrote for the run
// of taskID scheduled at scheduled, or nil when there is none.
func (db *DB) InjectedRequest(ctx context.Context, taskID string, scheduled time.Time) (*Injected, error) {
	found, err := findInjection(ctx, db.sql, ExternalIDPrefix+taskID, scheduled.Unix())
	if err != nil {
		return nil, fmt.Errorf("schedulerdb: task %s: %w", taskID, err)
	}
	return found, nil
}

// findInjection looks an injection up by its buildset's submitted_at and
// external_idstring. It goes from the buildset (submitted_at is indexed) to
// its request (buildsetid is indexed) in two lookups: as one join ordered
// by request id, MySQL walks every build request in id order, which made
// each injection cost a scan of the whole table.
func findInjection(ctx context.Context, q querier, externalID string, submittedAt int64) (*Injected, error) {
	var out Injected
	err := q.QueryRowContext(ctx, `SELECT id, sourcestampid FROM buildsets
		WHERE submitted_at = ? AND external_idstring = ? ORDER BY id LIMIT 1`, submittedAt, externalID).
		Scan(&out.BuildsetID, &out.SourcestampID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for an earlier injection: %w", err)
	}
	err = q.QueryRowContext(ctx, `SELECT id FROM buildrequests WHERE buildsetid = ? ORDER BY id LIMIT 1`, out.BuildsetID).Scan(&out.BRID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // not written by Inject, which adds both in one transaction
	}
	if err != nil {
		return nil, fmt.Errorf("look for the request of buildset %d: %w", out.BuildsetID, err)
	}
	out.Existed = true
	return &out, nil
}

type injectionRows struct {
	branch, revision    sql.NullString
	repository, project string
	externalID, reason  string
	submittedAt         int64
	names, values       []string
	builderName         string
	priority            int
}

func (r *injectionRows) insert(ctx context.Context, q querier, out *Injected) error {
	res, err := q.ExecContext(ctx, `INSERT INTO sourcestamps (branch, revision, patchid, repository, project)
		VALUES (?, ?, NULL, ?, ?)`, r.branch, r.revision, r.repository, r.project)
	if err != nil {
		return fmt.Errorf("insert sourcestamp: %w", err)
	}
	if out.SourcestampID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("sourcestamp id: %w", err)
	}
	res, err = q.ExecContext(ctx, `INSERT INTO buildsets (external_idstring, reason, sourcestampid, submitted_at, complete)
		VALUES (?, ?, ?, ?, 0)`, r.externalID, r.reason, out.SourcestampID, r.submittedAt)
	if err != nil {
		return fmt.Errorf("insert buildset: %w", err)
	}
	if out.BuildsetID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("buildset id: %w", err)
	}
	// One statement for all properties: a round trip per row would be most
	// of an injection's time.
	values := make([]string, len(r.names))
	args := make([]any, 0, 3*len(r.names))
	for i := range r.names {
		values[i] = "(?, ?, ?)"
		args = append(args, out.BuildsetID, r.names[i], r.values[i])
	}
	if _, err := q.ExecContext(ctx, "INSERT INTO buildset_properties (buildsetid, property_name, property_value) VALUES "+
		strings.Join(values, ", "), args...); err != nil {
		return fmt.Errorf("insert properties: %w", err)
	}
	res, err = q.ExecContext(ctx, `INSERT INTO buildrequests (buildsetid, buildername, priority, claimed_at, complete, submitted_at)
		VALUES (?, ?, ?, 0, 0, ?)`, out.BuildsetID, r.builderName, r.priority, r.submittedAt)
	if err != nil {
		return fmt.Errorf("insert buildrequest: %w", err)
	}
	if out.BRID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("buildrequest id: %w", err)
	}
	return nil
}

// Column widths of the 0.8.2 schema; MySQL in strict mode rejects longer
// values and SQLite would keep them, so both are refused up front with the
// name of the offending field, where BBB let MySQL truncate them or fail the
// insert.
const (
	maxVarchar256  = 256
	maxVarchar1024 = 1024
)

func (in Injection) render() (*injectionRows, error) {
	switch {
	case in.TaskID == "":
		return nil, errors.New("schedulerdb: injection: TaskID is empty: pass status.taskId")
	case len(in.TaskID) > 32 || strings.ContainsAny(in.TaskID, " \t\r\n:"):
		return nil, fmt.Errorf("schedulerdb: injection: TaskID %q is not a slugid: pass status.taskId (22 URL-safe base64 characters)", in.TaskID)
	case in.BuilderName == "":
		return nil, errors.New("schedulerdb: injection: BuilderName is empty: pass payload.buildername")
	case utf8.RuneCountInString(in.BuilderName) > maxVarchar256:
		return nil, fmt.Errorf("schedulerdb: injection: BuilderName is %d characters: buildrequests.buildername holds at most %d", utf8.RuneCountInString(in.BuilderName), maxVarchar256)
	case in.Scheduled.IsZero():
		return nil, errors.New("schedulerdb: injection: Scheduled is zero: pass the pending run's status.runs[-1].scheduled")
	}
	r := &injectionRows{
		externalID:  ExternalIDPrefix + in.TaskID,
		reason:      ReasonPrefix + in.TaskID,
		submittedAt: in.Scheduled.Unix(),
		builderName: in.BuilderName,
	}
	if in.Priority == "high" {
		r.priority = 1
	}
	if ss := in.Sourcestamp; ss != nil {
		branch := NormalizeBranch(ss.Branch)
		if utf8.RuneCountInString(branch) > maxVarchar256 {
			return nil, fmt.Errorf("schedulerdb: injection: payload.sourcestamp.branch is longer than %d characters", maxVarchar256)
		}
		if utf8.RuneCountInString(ss.Revision) > maxVarchar256 {
			return nil, fmt.Errorf("schedulerdb: injection: payload.sourcestamp.revision is longer than %d characters", maxVarchar256)
		}
		r.branch = sql.NullString{String: branch, Valid: true}
		r.revision = sql.NullString{String: ss.Revision, Valid: ss.Revision != ""}
		r.repository, r.project = ss.Repository, ss.Project
	}
	props := make(map[string]json.RawMessage, len(in.Properties)+1)
	for name, v := range in.Properties {
		props[name] = v
	}
	taskID, _ := json.Marshal(in.TaskID)
	props["taskId"] = taskID // forced: overrides a taskId the payload supplies
	for name := range props {
		r.names = append(r.names, name)
	}
	sort.Strings(r.names)
	for _, name := range r.names {
		if name == "" || utf8.RuneCountInString(name) > maxVarchar256 {
			return nil, fmt.Errorf("schedulerdb: injection: property name %q must be 1 to %d characters", name, maxVarchar256)
		}
		v, err := propertyValue(props[name])
		if err != nil {
			return nil, fmt.Errorf("schedulerdb: injection: payload.properties.%s: %w", name, err)
		}
		if len(v) > maxVarchar1024 { // ASCII only after Python-style escaping
			return nil, fmt.Errorf("schedulerdb: injection: payload.properties.%s is %d characters as [value, \"bbb\"] JSON: buildset_properties.property_value holds at most %d; shorten the value", name, len(v), maxVarchar1024)
		}
		r.values = append(r.values, v)
	}
	return r, nil
}

// NormalizeBranch turns payload.sourcestamp.branch into the sourcestamps
// branch BBB stores: trailing "/" removed, and of a URL only its path
// (`https://hg.mozilla.org/integration/mozilla-inbound/` becomes
// `integration/mozilla-inbound`).
func NormalizeBranch(branch string) string {
	branch = strings.TrimRight(branch, "/")
	if strings.Contains(branch, "://") {
		if u, err := url.Parse(branch); err == nil {
			return strings.Trim(u.Path, "/")
		}
	}
	return branch
}

// SelfServeBranch is the branch word of a self-serve URL: the last path
// component of a sourcestamp branch ("integration/mozilla-inbound" gives
// "mozilla-inbound").
func SelfServeBranch(branch string) string {
	branch = strings.TrimRight(branch, "/")
	if i := strings.LastIndexByte(branch, '/'); i >= 0 {
		return branch[i+1:]
	}
	return branch
}
