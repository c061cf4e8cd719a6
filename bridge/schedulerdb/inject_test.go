package schedulerdb

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// Injection writes BBB's rows (docs/bridge.md, "SchedulerDB", Injection),
// checked column by column.
func TestInjectWritesSpecRows(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		ctx := context.Background()
		got, err := db.Inject(ctx, Injection{
			TaskID:      taskA,
			BuilderName: "builder good name",
			Sourcestamp: &SourcestampSpec{Branch: "http://foo.com/blah"},
			Properties: map[string]json.RawMessage{
				"product": json.RawMessage(`"foo"`),
				"taskId":  json.RawMessage(`"someone-else"`), // overridden by the forced taskId
				"nested":  json.RawMessage(`{"z":[1,2.5,true,null],"a":"caf\u00e9 \"q\" \ud83d\ude00"}`),
			},
			Scheduled: time.Unix(60, 0),
			Priority:  "medium",
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Existed {
			t.Fatal("first injection reported Existed")
		}

		// sourcestamps
		var branch, revision, patchid any
		var repository, project string
		if err := db.SQL().QueryRow("SELECT branch, revision, patchid, repository, project FROM sourcestamps WHERE id = ?", got.SourcestampID).
			Scan(&branch, &revision, &patchid, &repository, &project); err != nil {
			t.Fatal(err)
		}
		if s := asString(branch); s != "blah" {
			t.Errorf("sourcestamps.branch = %q, want %q", s, "blah")
		}
		if revision != nil || patchid != nil || repository != "" || project != "" {
			t.Errorf("sourcestamps revision=%v patchid=%v repository=%q project=%q, want NULL NULL '' ''", revision, patchid, repository, project)
		}

		// buildsets
		bs, err := db.Buildset(ctx, got.BuildsetID)
		if err != nil {
			t.Fatal(err)
		}
		want := Buildset{ID: got.BuildsetID, ExternalIDString: "taskId:" + taskA, Reason: "Created by BBB for task " + taskA,
			SourcestampID: got.SourcestampID, SubmittedAt: 60}
		if bs.ID != want.ID || bs.ExternalIDString != want.ExternalIDString || bs.Reason != want.Reason ||
			bs.SourcestampID != want.SourcestampID || bs.SubmittedAt != 60 || bs.Complete || bs.CompleteAt != nil || bs.Results != nil {
			t.Errorf("buildset = %+v, want %+v", bs, want)
		}

		// buildset_properties, byte for byte as Python's json.dumps writes them
		props, err := db.RawBuildsetProperties(ctx, got.BuildsetID)
		if err != nil {
			t.Fatal(err)
		}
		wantProps := map[string]string{
			"taskId":  `["` + taskA + `", "bbb"]`,
			"product": `["foo", "bbb"]`,
			"nested":  `[{"z": [1, 2.5, true, null], "a": "caf\u00e9 \"q\" \ud83d\ude00"}, "bbb"]`,
		}
		if len(props) != len(wantProps) {
			t.Errorf("properties = %v, want %v", props, wantProps)
		}
		for k, v := range wantProps {
			if props[k] != v {
				t.Errorf("property %s = %s, want %s", k, props[k], v)
			}
		}
		decoded, err := db.BuildsetProperties(ctx, got.BuildsetID)
		if err != nil {
			t.Fatal(err)
		}
		if p := decoded["product"]; string(p.Value) != `"foo"` || p.Source != "bbb" {
			t.Errorf("decoded product = %s/%s", p.Value, p.Source)
		}

		// buildrequests
		br, err := db.BuildRequest(ctx, got.BRID)
		if err != nil {
			t.Fatal(err)
		}
		if br.BuildsetID != got.BuildsetID || br.BuilderName != "builder good name" || br.Priority != 0 ||
			br.ClaimedAt != 0 || br.ClaimedByName != "" || br.ClaimedByIncarnation != "" || br.Complete ||
			br.Results != nil || br.SubmittedAt != 60 || br.CompleteAt != nil {
			t.Errorf("buildrequest = %+v", br)
		}
		if n := nullString(t, db, "SELECT claimed_by_name FROM buildrequests WHERE id = ?", got.BRID); n.Valid {
			t.Errorf("claimed_by_name = %q, want NULL", n.String)
		}
		// BBB's injection order shows in the ids: one of each row.
		for _, tbl := range []string{"sourcestamps", "buildsets", "buildrequests"} {
			if n := count(t, db, "SELECT COUNT(*) FROM "+tbl); n != 1 {
				t.Errorf("%s has %d rows, want 1", tbl, n)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM builds"); n != 0 {
			t.Errorf("builds has %d rows, want 0", n)
		}
	})
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

// Only task priority "high" exactly gives the build request priority 1.
func TestInjectPriority(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		for i, tc := range []struct {
			priority string
			want     int
		}{{"high", 1}, {"High", 0}, {"very-high", 0}, {"highest", 0}, {"", 0}, {"low", 0}} {
			in := injection(taskA[:21]+string(rune('a'+i)), "b", 100)
			in.Priority = tc.priority
			got, err := db.Inject(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			br, err := db.BuildRequest(context.Background(), got.BRID)
			if err != nil {
				t.Fatal(err)
			}
			if br.Priority != tc.want {
				t.Errorf("priority %q stored as %d, want %d", tc.priority, br.Priority, tc.want)
			}
		}
	})
}

// A task without a sourcestamp (optional in the payload schema; BBB's
// injector crashed on it) gets a sourcestamp with NULL branch instead of
// failing.
func TestInjectWithoutSourcestamp(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		in := injection(taskA, "b", 100)
		in.Sourcestamp = nil
		got, err := db.Inject(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if b := nullString(t, db, "SELECT branch FROM sourcestamps WHERE id = ?", got.SourcestampID); b.Valid {
			t.Errorf("branch = %q, want NULL", b.String)
		}
		ss, err := db.SourcestampForRequest(context.Background(), got.BRID)
		if err != nil || ss.Branch != "" {
			t.Errorf("SourcestampForRequest = %+v, %v", ss, err)
		}
	})
}

func TestInjectRejectsBadInputAndWritesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		db := tg.open(t)
		long := json.RawMessage(`"` + strings.Repeat("x", 1020) + `"`)
		for _, tc := range []struct {
			name string
			mod  func(*Injection)
			want string
		}{
			{"no task", func(i *Injection) { i.TaskID = "" }, "TaskID"},
			{"no builder", func(i *Injection) { i.BuilderName = "" }, "BuilderName"},
			{"long builder", func(i *Injection) { i.BuilderName = strings.Repeat("b", 257) }, "BuilderName"},
			{"no scheduled", func(i *Injection) { i.Scheduled = time.Time{} }, "Scheduled"},
			{"long property", func(i *Injection) { i.Properties["log"] = long }, "payload.properties.log"},
			{"bad json", func(i *Injection) { i.Properties["x"] = json.RawMessage(`{`) }, "payload.properties.x"},
		} {
			in := injection(taskA, "b", 100)
			tc.mod(&in)
			_, err := db.Inject(context.Background(), in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
			}
		}
		for _, tbl := range []string{"sourcestamps", "buildsets", "buildset_properties", "buildrequests"} {
			if n := count(t, db, "SELECT COUNT(*) FROM "+tbl); n != 0 {
				t.Errorf("%s has %d rows after rejected injections", tbl, n)
			}
		}
	})
}

// Duplicate task-pending handled by many instances at once: one request.
func TestInjectConcurrentDuplicatesMakeOneRequest(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		dbs := []*DB{tg.open(t), tg.open(t)}
		const n = 16
		brids := make([]int64, n)
		existed := make([]bool, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := dbs[i%2].Inject(context.Background(), injection(taskA, "b", 100))
				if err != nil {
					errs <- err
					return
				}
				brids[i], existed[i] = got.BRID, got.Existed
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		fresh := 0
		for i := range n {
			if brids[i] != brids[0] {
				t.Errorf("injection %d got brid %d, injection 0 got %d", i, brids[i], brids[0])
			}
			if !existed[i] {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d injections created rows, want exactly 1", fresh)
		}
		for _, tbl := range []string{"sourcestamps", "buildsets", "buildrequests"} {
			if c := count(t, dbs[0], "SELECT COUNT(*) FROM "+tbl); c != 1 {
				t.Errorf("%s has %d rows, want 1", tbl, c)
			}
		}
		// A later run of the same task (a rerun, another scheduled time) is a
		// new request.
		got, err := dbs[0].Inject(context.Background(), injection(taskA, "b", 200))
		if err != nil || got.Existed || got.BRID == brids[0] {
			t.Errorf("rerun injection = %+v, %v; want a new request", got, err)
		}
	})
}

func TestBranchHelpers(t *testing.T) {
	for in, want := range map[string]string{
		"https://hg.mozilla.org/integration/mozilla-inbound/": "integration/mozilla-inbound",
		"http://foo.com/blah":          "blah",
		"integration/mozilla-inbound/": "integration/mozilla-inbound",
		"foo":                          "foo",
	} {
		if got := NormalizeBranch(in); got != want {
			t.Errorf("NormalizeBranch(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"integration/mozilla-inbound": "mozilla-inbound", "foo/bar": "bar", "foo": "foo"} {
		if got := SelfServeBranch(in); got != want {
			t.Errorf("SelfServeBranch(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPythonJSON(t *testing.T) {
	for in, want := range map[string]string{
		`"foo"`:                   `"foo"`,
		`{"b":1,"a":{"c":[]}}`:    `{"b": 1, "a": {"c": []}}`,
		`[1,"<&>",{}]`:            `[1, "<&>", {}]`,
		`"tab\there\u0001\u007f"`: `"tab\there\u0001` + "\x7f" + `"`,
		`"ü€"`:                    `"\u00fc\u20ac"`,
		` 12e3 `:                  `12e3`,
	} {
		got, err := pythonJSON([]byte(in))
		if err != nil || got != want {
			t.Errorf("pythonJSON(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `{`, `1 2`, `{"a"}`} {
		if got, err := pythonJSON([]byte(bad)); err == nil {
			t.Errorf("pythonJSON(%q) = %s, want an error", bad, got)
		}
	}
}
