//go:build linux

package benchcompare

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/testzip"
)

// mountArtifact is the name under which the upstream task publishes the
// zip both workers mount (public/: neither needs a scope to read it).
const mountArtifact = "public/bench/mount.zip"

// upstream is a completed task with the zip artifact and its digest.
type upstream struct {
	taskID, sha256 string
	bytes          int
}

// publishZip has a task on the dev queue (claimed and completed by the
// harness itself, on a queue no worker serves) publish a zip of about
// size bytes as an s3 artifact, as a build task publishes a test harness.
func publishZip(t testing.TB, s *stack, size int) upstream {
	t.Helper()
	body := testzip.Mixed(t, size)
	sum := sha256.Sum256(body)
	now := time.Now().UTC()
	id := slugid.Nice()
	const queue = provisionerID + "/upstream"
	if _, err := s.queue.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: queue, Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)),
		Expires: tcclient.Time(now.Add(24 * time.Hour)), Payload: json.RawMessage(`{}`),
		Metadata: tcqueue.TaskMetadata{Name: "upstream", Description: "publishes the zip the mount scenario mounts",
			Owner: "bench@example.com", Source: "https://example.com/benchcompare"},
	}); err != nil {
		t.Fatalf("createTask (upstream): %v", err)
	}
	claim, err := s.queue.ClaimWork(queue, &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "bench", WorkerID: "upstream"})
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claimWork (upstream): %v", err)
	}
	req, _ := json.Marshal(map[string]any{"storageType": "s3", "contentType": "application/zip", "expires": tcclient.Time(now.Add(time.Hour))})
	pr := tcqueue.PostArtifactRequest(req)
	resp, err := s.queue.CreateArtifact(id, "0", mountArtifact, &pr)
	if err != nil {
		t.Fatalf("createArtifact (upstream): %v", err)
	}
	var s3 struct {
		PutURL string `json:"putUrl"`
	}
	if err := json.Unmarshal(*resp, &s3); err != nil {
		t.Fatalf("createArtifact (upstream) answer: %v", err)
	}
	put, _ := http.NewRequest(http.MethodPut, s3.PutURL, bytes.NewReader(body))
	put.Header.Set("Content-Type", "application/zip")
	r, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatalf("upload the upstream zip: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("upload the upstream zip: %s", r.Status)
	}
	if _, err := s.queue.ReportCompleted(id, "0"); err != nil {
		t.Fatalf("reportCompleted (upstream): %v", err)
	}
	return upstream{taskID: id, sha256: hex.EncodeToString(sum[:]), bytes: len(body)}
}

// readStampUnlessResolved is readStamp for a task that may fail before its
// command runs (a mount refused, say): it fails the test as soon as the
// task is resolved without having written the stamp.
func (s *stack) readStampUnlessResolved(t testing.TB, id, path string, p *proc, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if raw, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(raw), "\n") {
			return readStamp(t, path, p, time.Second)
		}
		st, err := s.queue.Status(id)
		if err == nil && len(st.Status.Runs) > 0 {
			if run := st.Status.Runs[0]; run.State != "pending" && run.State != "running" {
				if raw, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(raw), "\n") {
					return readStamp(t, path, p, time.Second)
				}
				t.Fatalf("task %s resolved %s/%s before its command ran; worker log:\n%s", id, run.State, run.ReasonResolved, p.tail())
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("nothing in %s after %s; worker log:\n%s", path, timeout, p.tail())
	return time.Time{}
}

// mountPayload mounts the upstream zip read-only into the task directory's
// `zip`, with its digest given, then writes `date +%s%N` to stamp.
func mountPayload(up upstream, stamp string) map[string]any {
	p := shPayload("date +%s%N > " + stamp)
	p["maxRunTime"] = 600
	p["mounts"] = []map[string]any{{
		"directory": "zip", "format": "zip",
		"content": map[string]string{"taskId": up.taskID, "artifact": mountArtifact, "sha256": up.sha256},
	}}
	return p
}

// mountTimes runs two tasks mounting the upstream zip on a fresh worker
// (empty download cache), one after the other, each created while the
// worker waits in its long poll: createTask → command started in ms, cold
// (the first: fetch, hash, unpack) and warm (the second: the download
// cache has the file).
func mountTimes(t testing.TB, s *stack, w worker, p *proc, workerType, dir string, up upstream) (cold, warm float64) {
	t.Helper()
	var ms [2]float64
	for i := range ms {
		time.Sleep(w.settle)
		stamp := filepath.Join(dir, fmt.Sprintf("mount-%d", i))
		t0 := time.Now()
		// Both workers require a mounted artifact's task among the
		// dependencies (generic-worker's mounts.go at v44.23.4).
		id := s.createTask(t, workerType, mountPayload(up, stamp), func(d *tcqueue.TaskDefinitionRequest) {
			d.Dependencies = []string{up.taskID}
		})
		started := s.readStampUnlessResolved(t, id, stamp, p, 5*time.Minute)
		ms[i] = float64(started.Sub(t0).Microseconds()) / 1000
		s.waitResolved(t, id, p, 5*time.Minute)
	}
	return ms[0], ms[1]
}
