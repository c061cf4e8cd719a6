package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/provisioner/client"
)

func TestProvisionerConfigSection(t *testing.T) {
	var bad ProvisionerConfig
	if err := yaml.Unmarshal([]byte("url: prov.example.com\nheartbeatInterval: 30 seconds\npollWait: -5s\n"), &bad); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`runner.provisioner.heartbeatInterval: "30 seconds" is not a positive duration: write e.g. 30s`,
		`runner.provisioner.pollWait: "-5s" is not a positive duration: write e.g. 30s`,
		`runner.provisioner.url "prov.example.com": not an absolute URL; write https://provisioner.example.com`,
	}
	if got := bad.Problems(); !slices.Equal(got, want) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, want)
	}
	// Plain http only to this machine: the machine token is in every request.
	for url, ok := range map[string]bool{
		"https://prov.lab": true, "http://127.0.0.1:8080": true, "http://[::1]:80": true, "http://localhost:1": true,
		"http://prov.lab": false, "http://10.0.0.5:8080": false, "ftp://prov.lab": false, "https://": false,
	} {
		probs := ProvisionerConfig{URL: url}.Problems()
		if (len(probs) == 0) != ok {
			t.Errorf("url %q: problems %q; want accepted=%v", url, probs, ok)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close()
	var good ProvisionerConfig
	src := "url: https://prov.example.com\nenrollmentToken: lr-enroll-x\nheartbeatInterval: 45s\nimdsEndpoint: " + nowhere + "\n"
	if err := yaml.Unmarshal([]byte(src), &good); err != nil {
		t.Fatal(err)
	}
	if p := good.Problems(); len(p) != 0 || !good.Enabled() {
		t.Fatalf("good section: %v, enabled %v", p, good.Enabled())
	}
	dir := testTempDir(t)
	lc, err := good.LinkConfig(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if lc.URL != "https://prov.example.com" || lc.EnrollmentToken != "lr-enroll-x" || lc.EC2 != nil || lc.HeartbeatInterval != 45*time.Second ||
		lc.StatePath != filepath.Join(dir, "provisioner-link.json") || lc.Facts.Hostname != host || lc.Facts.CPUs <= 0 {
		t.Fatalf("link config %+v", lc)
	}
	if (ProvisionerConfig{}).Enabled() {
		t.Fatal("an empty section enables the provisioner")
	}
}

// TestLinkHeartbeatsToAnOlderProvisioner: a provisioner that predates the
// kind of work refuses a Buildbot build's kind, builder and build number
// as unknown fields; the link then reports the build by task id alone, so
// the machine stays online and busy. Taskcluster runs name no kind.
func TestLinkHeartbeatsToAnOlderProvisioner(t *testing.T) {
	e := newLinkEnv(t, nil)
	e.run()
	e.pool("hello", linkTaskQueue)
	var refused atomic.Int64
	inner := e.srv.Handler()
	// The older provisioner's answer to fields it does not know.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/heartbeat") {
			body, _ := io.ReadAll(r.Body)
			var hb struct {
				CurrentTask map[string]any `json:"currentTask"`
			}
			_ = json.Unmarshal(body, &hb)
			for _, f := range []string{"kind", "builder", "buildNumber"} {
				if _, ok := hb.CurrentTask[f]; ok {
					refused.Add(1)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_ = json.NewEncoder(w).Encode(client.Error{Code: "InvalidRequest", Field: "currentTask." + f,
						Message: fmt.Sprintf("currentTask.%s: unknown field %q: remove it or check its spelling", f, f)})
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	l, rec := e.newLink(filepath.Join(e.dir, "link.json"), func(c *LinkConfig) { c.URL, c.EnrollmentToken = old.URL, e.enrollToken(1) })
	e.start(l)
	id := l.MachineID()

	rec.setState(client.HeartbeatRequest{State: client.StateBusy, CurrentTask: taskRef(CurrentTask{TaskID: "T1", RunID: 2, Kind: SourceTaskcluster})})
	linkEventually(t, "the Taskcluster run in the registry", func() bool {
		m := e.machine(id)
		return m.CurrentTask != nil && m.CurrentTask.TaskID == "T1"
	})
	if refused.Load() != 0 {
		t.Fatal("a Taskcluster run's heartbeat named fields an older provisioner refuses")
	}
	rec.setState(client.HeartbeatRequest{State: client.StateBusy, CurrentTask: taskRef(CurrentTask{TaskID: "T2", Kind: SourceBuildbot,
		Buildbot: &agent.BuildInfo{Builder: "linux-sleep", BuildNumber: 3}})})
	linkEventually(t, "the build in the registry by task id", func() bool {
		m := e.machine(id)
		return m.CurrentTask != nil && m.CurrentTask.TaskID == "T2" && m.State == client.StateBusy
	})
	moreHeartbeats(t, rec, 3)
	if n := refused.Load(); n != 1 {
		t.Fatalf("%d heartbeats refused, want 1 (then reported without the kind of work)", n)
	}
	if st := l.Status(); !st.Connected {
		t.Fatalf("link status %+v, want connected", st)
	}

	cases := []struct {
		err  error
		want bool
	}{
		{&client.APIError{Status: 400, Body: client.Error{Field: "currentTask.builder", Message: `currentTask.builder: unknown field "builder": remove it`}}, true},
		{&client.APIError{Status: 400, Body: client.Error{Field: "currentTask.kind", Message: `currentTask.kind: "x" is not a kind of work`}}, false},
		{&client.APIError{Status: 400, Body: client.Error{Field: "mood", Message: `mood: unknown field "mood"`}}, false},
		{&client.APIError{Status: 503, Body: client.Error{Field: "currentTask.kind", Message: "unknown field"}}, false},
		{errors.New("unknown field"), false},
	}
	for _, c := range cases {
		if got := unknownKindOfWork(c.err); got != c.want {
			t.Errorf("unknownKindOfWork(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
