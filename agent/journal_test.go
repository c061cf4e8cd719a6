package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
)

func TestJournalRecordReplaceForget(t *testing.T) {
	dir := filepath.Join(testTempDir(t), "journal")
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(j.Record(JournalEntry{TaskID: "t1", RunID: 0, Credentials: tcclient.Credentials{ClientID: "old"}, TakenUntil: until}))
	must(j.Record(JournalEntry{TaskID: "t1", RunID: 0, Credentials: tcclient.Credentials{ClientID: "new"}, TakenUntil: until}))
	must(j.Record(JournalEntry{TaskID: "t2", RunID: 3}))
	must(os.WriteFile(filepath.Join(dir, "junk.json"), []byte("{not json"), 0o600))

	entries, err := j.Entries()
	if err == nil {
		t.Error("a corrupt entry was not reported")
	}
	if len(entries) != 2 {
		t.Fatalf("entries %+v, want 2", entries)
	}
	for _, e := range entries {
		if e.TaskID == "t1" && (e.Credentials.ClientID != "new" || !e.TakenUntil.Equal(until)) {
			t.Errorf("t1 entry %+v, want the replacement", e)
		}
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 2 {
		t.Errorf("journal directory holds %d files, want 2 (no temp files, corrupt entry removed)", len(files))
	}
	must(j.Forget("t1", 0))
	must(j.Forget("t1", 0)) // forgetting twice is fine
	entries, _ = j.Entries()
	if len(entries) != 1 || entries[0].TaskID != "t2" {
		t.Errorf("after Forget: %+v", entries)
	}
}

// recoverRun records the resolution Recover reports, failing as told.
type recoverRun struct {
	fakeRun
	err      error
	resolved *[]string
}

func (r recoverRun) Resolve(_ context.Context, res Resolution) error {
	*r.resolved = append(*r.resolved, r.taskID+":"+res.String())
	return r.err
}

func TestJournalRecover(t *testing.T) {
	j, err := OpenJournal(filepath.Join(testTempDir(t), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	for _, e := range []JournalEntry{
		{TaskID: "running", TakenUntil: future},
		{TaskID: "gone", TakenUntil: future},
		{TaskID: "expired", TakenUntil: time.Now().Add(-time.Minute)},
		{TaskID: "unreachable", TakenUntil: future},
	} {
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	var resolved []string
	errs := map[string]error{
		"gone":        ErrRunGone,
		"expired":     errors.New("401: certificate expired"),
		"unreachable": errors.New("queue down"),
	}
	err = j.Recover(context.Background(), func(e JournalEntry) Run {
		return recoverRun{fakeRun: fakeRun{taskID: e.TaskID}, err: errs[e.TaskID], resolved: &resolved}
	}, slog.New(slog.DiscardHandler), RecoverOptions{})
	if err == nil {
		t.Error("Recover hid the failure to resolve a live run")
	}
	if len(resolved) != 4 {
		t.Errorf("resolutions %v, want one per entry", resolved)
	}
	for _, r := range resolved {
		if r[len(r)-len("exception/worker-shutdown"):] != "exception/worker-shutdown" {
			t.Errorf("resolution %s, want exception/worker-shutdown", r)
		}
	}
	entries, _ := j.Entries()
	if len(entries) != 1 || entries[0].TaskID != "unreachable" {
		t.Errorf("left in journal: %+v; want only the run that could not be resolved", entries)
	}
}
