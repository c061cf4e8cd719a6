package devstack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStartRejectsBadListenAddress(t *testing.T) {
	_, err := Start(context.Background(), Options{Listen: "127.0.0.1:notaport"})
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("want an error naming --listen, got %v", err)
	}
}

func TestExtensionsAreMountedAndStoppedWithTheStack(t *testing.T) {
	stopped := make(chan struct{})
	s, err := Start(context.Background(), Options{Extensions: []Extension{
		func(s *Stack, mux *http.ServeMux) (func(context.Context) error, error) {
			root := s.RootURL
			mux.HandleFunc("/api/v1/where", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, root) })
			return func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.RootURL + "/api/v1/where")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != s.RootURL {
		t.Fatalf("extension answered %q, want the stack's root URL %q", body, s.RootURL)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Close returned before the extension's run function ended")
	}
}

func TestFailingExtensionFailsStart(t *testing.T) {
	_, err := Start(context.Background(), Options{Extensions: []Extension{
		func(*Stack, *http.ServeMux) (func(context.Context) error, error) { return nil, errors.New("boom") },
	}})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want the extension's error, got %v", err)
	}
}

// TestTaskPageLinksLeadToTheTaskStatus: /tasks/<taskId>, where Taskcluster's
// UI shows a task (and where the provisioner's dashboard links), leads to
// the task's status on the dev queue.
func TestTaskPageLinksLeadToTheTaskStatus(t *testing.T) {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.RootURL + "/tasks/fN1mZ3QfQ5yZ0aBcDeFgHw")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/queue/v1/task/fN1mZ3QfQ5yZ0aBcDeFgHw/status" {
		t.Fatalf("GET /tasks/…: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
