package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/platform"

	bbclient "github.com/labrunner/labrunner/bridge/client"
)

func testBBRun(t *testing.T, results BuilderResults) *bbRun {
	t.Helper()
	c, err := bbclient.New("http://127.0.0.1:1", bbclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewBBSource(BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", Results: map[string]BuilderResults{"b": results}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.newRun(&bbclient.Build{BuildID: 7, BuildNumber: 3, BuilderName: "b", TaskID: "T",
		Properties: map[string]json.RawMessage{"product": json.RawMessage(`"firefox"`), "keep": json.RawMessage(`1`)},
		Steps:      []bbclient.Step{{Command: []string{"sh", "-c", "exit 0"}}}, MaxRunTime: 30})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBBResultMapping(t *testing.T) {
	for _, c := range []struct {
		name string
		res  Resolution
		code int
		want int
	}{
		{"completed", Completed, 0, bbclient.Success},
		{"failed plain", Failed, 3, bbclient.Failure},
		{"failed with a warnings code", Failed, 1, bbclient.Warnings},
		{"timed out or a missing artifact", Failed, -1, bbclient.Failure},
		{"retry code", Exception(ReasonIntermittentTask), 4, bbclient.Retry},
		{"worker shutdown", Exception(ReasonWorkerShutdown), -1, bbclient.Retry},
		{"malformed steps", Exception(ReasonMalformedPayload), -1, bbclient.Exception},
		{"internal error", Exception(ReasonInternalError), -1, bbclient.Exception},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := testBBRun(t, BuilderResults{Warnings: []int{1}, Retry: []int{4}})
			r.out = outcome{exitCode: c.code}
			if got := r.result(c.res); got != c.want {
				t.Errorf("result(%s, exit %d) = %d, want %d", c.res, c.code, got, c.want)
			}
		})
	}
}

// The builder's retry codes reach the payload, so the agent's own rule
// (retry code → exception/intermittent-task) applies to builds.
func TestBBRunPayload(t *testing.T) {
	r := testBBRun(t, BuilderResults{Retry: []int{4}})
	spec, err := parseTaskPayload(r.Task())
	if err != nil {
		t.Fatalf("payload made from the steps is invalid: %v", err)
	}
	if spec.CommandCount() != 1 || spec.MaxRunTime.Seconds() != 30 || len(spec.OnExitStatus.Retry) != 1 || spec.OnExitStatus.Retry[0] != 4 {
		t.Errorf("payload = %+v", spec)
	}
	if r.TaskID() != "T" || !r.TakenUntil().IsZero() {
		t.Errorf("TaskID %q TakenUntil %v", r.TaskID(), r.TakenUntil())
	}
	info, ok := BuildOf(r)
	if !ok || info.Builder != "b" || info.BuildNumber != 3 {
		t.Errorf("BuildOf = %+v, %v", info, ok)
	}
}

func TestBBPropertiesFile(t *testing.T) {
	r := testBBRun(t, BuilderResults{})
	dir := testTempDir(t)
	r.taskDir = dir
	if err := os.WriteFile(filepath.Join(dir, PropertiesFileName), []byte(`{"product":"thunderbird","got_revision":"abc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	props, err := r.properties()
	if err != nil {
		t.Fatal(err)
	}
	if string(props["product"]) != `"thunderbird"` || string(props["got_revision"]) != `"abc"` || string(props["keep"]) != `1` {
		t.Errorf("merged properties = %s", props)
	}
	if err := os.WriteFile(filepath.Join(dir, PropertiesFileName), []byte(`["not", "an object"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.properties(); err == nil || !strings.Contains(err.Error(), PropertiesFileName) {
		t.Errorf("a malformed properties file gave %v, want an error naming the file", err)
	}
}

func TestNewBBSourceRefusesBadConfig(t *testing.T) {
	c, _ := bbclient.New("http://127.0.0.1:1", bbclient.Options{})
	for _, c := range []struct {
		cfg  BBSourceConfig
		want string
	}{
		{BBSourceConfig{Builders: []string{"b"}, WorkerID: "w"}, "Client"},
		{BBSourceConfig{Client: c, WorkerID: "w"}, "Builders"},
		{BBSourceConfig{Client: c, Builders: []string{"b"}}, "WorkerID"},
		{BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", LogUploadURL: "ftp://x"}, "LogUploadURL"},
		{BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", KillGrace: -time.Second}, "KillGrace"},
	} {
		if _, err := NewBBSource(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewBBSource(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
}

// A build is stopped after its source's grace; other runs after the
// agent's.
func TestBBSourceKillGrace(t *testing.T) {
	c, _ := bbclient.New("http://127.0.0.1:1", bbclient.Options{})
	s, err := NewBBSource(BBSourceConfig{Client: c, Builders: []string{"b"}, WorkerID: "w", KillGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.newRun(&bbclient.Build{BuildID: 1, BuilderName: "b", Steps: []bbclient.Step{{Command: []string{"true"}}}, MaxRunTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{TaskUser: platform.TaskUserService, TasksDir: filepath.Join(testTempDir(t), "tasks")})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.killGrace(r); got != 3*time.Second {
		t.Errorf("a build's grace = %s, want its source's 3s", got)
	}
	if got := a.killGrace(&LocalRun{}); got != 10*time.Second {
		t.Errorf("a native run's grace = %s, want the agent's 10s", got)
	}
}

// fixedSource returns one run per claim when has is true.
type fixedSource struct {
	name  string
	has   bool
	asked *[]string
}

func (s fixedSource) Claim(context.Context, int) ([]Run, error) {
	*s.asked = append(*s.asked, s.name)
	if s.has {
		return []Run{&bbRun{}}, nil
	}
	return nil, nil
}

func TestMultiSourceRotates(t *testing.T) {
	var asked []string
	m, err := NewMultiSource(nil, fixedSource{"tc", true, &asked}, fixedSource{"bb", true, &asked})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if runs, err := m.Claim(context.Background(), 1); err != nil || len(runs) != 1 {
			t.Fatalf("claim = %d runs, %v", len(runs), err)
		}
	}
	// Both always have work: each is asked first every other time.
	if got := strings.Join(asked, ","); got != "tc,bb,tc,bb" {
		t.Errorf("asked %s, want tc,bb,tc,bb", got)
	}

	asked = nil
	m, _ = NewMultiSource(nil, fixedSource{"tc", false, &asked}, fixedSource{"bb", true, &asked})
	for range 2 {
		if runs, _ := m.Claim(context.Background(), 1); len(runs) != 1 {
			t.Fatalf("claim returned %d runs, want the bb run", len(runs))
		}
	}
	// An empty source passes the claim to the other.
	if got := strings.Join(asked, ","); got != "tc,bb,bb" {
		t.Errorf("asked %s, want tc,bb,bb", got)
	}
}
