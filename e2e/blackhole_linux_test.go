//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/provisioner/client"
	"github.com/labrunner/labrunner/runner"
)

// TestBlackHoleRunnerIsQuarantined: three runners serve one pool of the
// dev queue through a provisioner; tasks fail on the machine whose
// directory holds a marker file. The runners report their runs, the
// provisioner's detector quarantines that machine (and no other), the
// runner stops claiming, and its `runner status` shows the reason in
// numbers.
func TestBlackHoleRunnerIsQuarantined(t *testing.T) {
	// One machine in three may be quarantined by the detector.
	l := newBlackHoleLab(t, "bh-", client.BlackHolePolicy{MaxQuarantinedShare: 0.34}, nil)
	srv, admin, q, status := l.srv, l.admin, l.q, l.status
	create := func() string { return l.createTask(t) }
	var tasks []string
	for range 30 {
		tasks = append(tasks, create())
	}
	var st *runner.Status
	waitFor(t, "bh-0 quarantined by the provisioner", func() bool {
		st = status["bh-0"]()
		return st != nil && st.Quarantine != nil && st.Quarantine.Source == runner.SourceProvisioner
	})
	if r := st.Quarantine.Reason; !strings.HasPrefix(r, "provisioner: black hole: ") || !strings.Contains(r, "runs failed; pool 0 %") {
		t.Errorf("bh-0's quarantine reason %q, want the detector's numbers", r)
	}
	var text strings.Builder
	if err := runner.FormatStatus(&text, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "black hole: ") {
		t.Errorf("runner status text lacks the reason:\n%s", text.String())
	}
	ms, err := admin.ListMachines(context.Background(), "bh")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		quarantined := m.QuarantinedUntil != nil && m.QuarantinedUntil.After(time.Now())
		if quarantined != (m.MachineID == "bh-0") {
			t.Errorf("%s quarantined=%v (%s)", m.MachineID, quarantined, m.QuarantineReason)
		}
	}
	// It stops claiming: what is left, and new tasks, run elsewhere.
	for range 6 {
		tasks = append(tasks, create())
	}
	after := time.Now()
	// A bound for a hung test, not a timing assertion: two runners work
	// through the tasks left, slowly on a loaded machine under -race.
	deadline := time.Now().Add(3 * time.Minute)
	for _, id := range tasks {
		var s *tcqueue.TaskStatusResponse
		for {
			s, err = q.Status(id)
			if err == nil && (s.Status.State == "completed" || s.Status.State == "failed" || s.Status.State == "exception") {
				break
			}
			if time.Now().After(deadline) {
				b, _ := json.Marshal(s)
				t.Fatalf("task %s not resolved: %v %s", id, err, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, r := range s.Status.Runs {
			if r.WorkerID == "bh-0" && time.Time(r.Started).After(after) {
				t.Errorf("task %s run %d started on the quarantined bh-0 at %s", id, r.RunID, time.Time(r.Started).Format(time.RFC3339Nano))
			}
		}
	}
	t.Logf("bh-0: %s", st.Quarantine.Reason)

	// Every run reached the provisioner once, as the queue resolved it.
	waitFor(t, "every run reported", func() bool {
		runs, err := srv.Store().RunReports(context.Background(), "bh", time.Time{}, time.Time{})
		return err == nil && len(runs) == len(tasks)
	})
	runs, _ := srv.Store().RunReports(context.Background(), "bh", time.Time{}, time.Time{})
	for _, r := range runs {
		s, err := q.Status(r.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		want, code := "completed", 0
		if r.MachineID == "bh-0" {
			want, code = "failed", 1
		}
		if qr := s.Status.Runs[r.RunID]; qr.State != r.Result || r.Result != want || r.ExitCode == nil || *r.ExitCode != code || qr.WorkerID != r.MachineID || r.Kind != client.KindTaskcluster {
			t.Errorf("reported %s/%d on %s: %s exit %v, queue says %s on %s; want %s exit %d", r.TaskID, r.RunID, r.MachineID, r.Result, r.ExitCode, qr.State, qr.WorkerID, want, code)
		}
	}
}
