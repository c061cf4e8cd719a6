package mounts

// Mounting a 200 MB zip from an upstream task's artifact through the dev
// queue: cold (fetched, hashed, unpacked) and warm (a digest cache hit:
// re-hashed and unpacked). `make bench` runs these; docs/benchmarks.md
// records the figures.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/taskcluster/slugid-go/slugid"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"

	"github.com/labrunner/labrunner/internal/devstack"
	"github.com/labrunner/labrunner/internal/testzip"
)

// upstreamArtifact completes a task on the stack with one s3 artifact.
func upstreamArtifact(b *testing.B, s *devstack.Stack, name string, body []byte) string {
	creds := s.Credentials
	q := tcqueue.New(&creds, s.RootURL)
	now := time.Now().UTC()
	id := slugid.Nice()
	if _, err := q.CreateTask(id, &tcqueue.TaskDefinitionRequest{
		TaskQueueID: "bench/upstream", Created: tcclient.Time(now), Deadline: tcclient.Time(now.Add(time.Hour)),
		Expires: tcclient.Time(now.Add(24 * time.Hour)), Payload: json.RawMessage(`{}`),
		Metadata: tcqueue.TaskMetadata{Name: "up", Description: "up", Owner: "bench@example.com", Source: "https://example.com/bench"},
	}); err != nil {
		b.Fatal(err)
	}
	claim, err := q.ClaimWork("bench/upstream", &tcqueue.ClaimWorkRequest{Tasks: 1, WorkerGroup: "bench", WorkerID: "bench"})
	if err != nil || len(claim.Tasks) != 1 {
		b.Fatalf("claimWork: %v", err)
	}
	req, _ := json.Marshal(map[string]any{"storageType": "s3", "contentType": "application/zip", "expires": tcclient.Time(now.Add(time.Hour))})
	pr := tcqueue.PostArtifactRequest(req)
	resp, err := q.CreateArtifact(id, "0", name, &pr)
	if err != nil {
		b.Fatal(err)
	}
	var s3 struct {
		PutURL string `json:"putUrl"`
	}
	if err := json.Unmarshal(*resp, &s3); err != nil {
		b.Fatal(err)
	}
	put, _ := http.NewRequest(http.MethodPut, s3.PutURL, bytes.NewReader(body))
	put.Header.Set("Content-Type", "application/zip")
	r, err := http.DefaultClient.Do(put)
	if err != nil {
		b.Fatalf("upload: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b.Fatalf("upload: %s", r.Status)
	}
	if _, err := q.ReportCompleted(id, "0"); err != nil {
		b.Fatal(err)
	}
	return id
}

func BenchmarkMount200MBZipFromArtifact(b *testing.B) {
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := devstack.Start(context.Background(), devstack.Options{Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := testzip.Mixed(b, 200<<20)
	taskID := upstreamArtifact(b, s, "public/harness.zip", body)
	ms := []Mount{{Kind: ReadOnlyDirectory, Path: "harness", Format: Zip, Content: &Content{TaskID: taskID, Artifact: "public/harness.zip", SHA256: digestOf(body)}}}
	fetcher := &Fetcher{RootURL: s.RootURL, Credentials: s.Credentials}
	base := tempDir(b)
	quiet := func(string, ...any) {}
	newManager := func(dir string) *Manager {
		m, err := New(Config{CachesDir: filepath.Join(dir, "caches"), DownloadsDir: filepath.Join(dir, "downloads"), Logger: quietLog})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	// mount is timed; the clean-up after it is not.
	mount := func(b *testing.B, m *Manager, name string) {
		taskDir := filepath.Join(base, name)
		if err := os.MkdirAll(taskDir, 0o755); err != nil {
			b.Fatal(err)
		}
		md, err := m.Mount(context.Background(), Task{Dir: taskDir, Mounts: ms, Fetcher: fetcher, Logf: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = md.Unmount(false)
		_ = removeTree(taskDir)
		b.StartTimer()
	}
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := range b.N {
			b.StopTimer()
			dir := filepath.Join(base, fmt.Sprintf("cold%d", i))
			m := newManager(dir)
			b.StartTimer()
			mount(b, m, fmt.Sprintf("cold-task%d", i))
			b.StopTimer()
			_ = removeTree(dir)
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		m := newManager(filepath.Join(base, "warm"))
		b.StopTimer()
		mount(b, m, "fill") // fills the download cache
		b.StartTimer()
		b.SetBytes(int64(len(body)))
		for i := range b.N {
			mount(b, m, fmt.Sprintf("warm-task%d", i))
		}
	})
}
