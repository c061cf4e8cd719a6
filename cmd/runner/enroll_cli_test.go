//go:build unix

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

// TestCLIEnroll: `runner enroll` with a token from a file registers the
// machine and writes the config; the same token again, or a made-up one,
// exits 1 with a message that names the fix and writes nothing; an
// enrolled machine given a token is left alone.
func TestCLIEnroll(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := testsvc.TempDir(t, "lr-enroll-")
	const admin = "cli-enroll-admin-token-0123456789abcdef"
	prov, err := provisioner.New(provisioner.Config{DB: filepath.Join(dir, "prov.db"), AdminTokens: []string{admin}, Logger: quiet, CancelPollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(prov.Handler())
	t.Cleanup(func() { hs.Close(); _ = prov.Close() })
	ac := client.New(hs.URL, admin, client.WithRetries(0, 0, 0))
	tok, err := ac.CreateToken(context.Background(), client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tok.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enroll := func(name string, extra ...string) (int, string, string) {
		args := append([]string{"enroll", "--provisioner", hs.URL, "--config", filepath.Join(dir, name, "runner.yml"), "--data-dir", filepath.Join(dir, name, "data")}, extra...)
		return execute(context.Background(), args...)
	}

	code, out, stderr := enroll("m1", "--token-file", tokenFile, "--pool-hint", "win11-hw", "--tags", "gpu=yes")
	if code != 0 || !strings.HasPrefix(out, "enrolled as machine ") {
		t.Fatalf("enroll exited %d: %s%s", code, out, stderr)
	}
	ms, err := ac.ListMachines(context.Background(), "")
	if err != nil || len(ms) != 1 || ms[0].Facts.Tags["pool"] != "win11-hw" || ms[0].Facts.Tags["gpu"] != "yes" {
		t.Fatalf("machines %+v (%v); want one, tagged", ms, err)
	}

	code, _, stderr = enroll("m2", "--token", tok.Token)
	if code != 1 || !strings.Contains(stderr, "refused the enrollment token") || !strings.Contains(stderr, "provisioner token create --enroll 1") {
		t.Fatalf("reused token: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, tok.Token) {
		t.Errorf("the error shows the token: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "m2")); !os.IsNotExist(err) {
		t.Errorf("a refused enrolment wrote %s (%v)", filepath.Join(dir, "m2"), err)
	}

	t.Setenv(enrollTokenEnv, "lre_unused-0123456789")
	code, out, stderr = enroll("m1", "--pool-hint", "", "--tags", "")
	if code != 0 || !strings.HasPrefix(out, "already enrolled as machine "+ms[0].MachineID) {
		t.Fatalf("enrolled machine: exit %d: %s%s", code, out, stderr)
	}
	code, _, stderr = enroll("m3", "--tags", "novalue")
	if code != 1 || !strings.Contains(stderr, "key=value") {
		t.Fatalf("bad --tags: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = enroll("m3", "--token", "x")
	if code != 1 || !strings.Contains(stderr, "give the token once") {
		t.Fatalf("two token sources: exit %d, stderr %q", code, stderr)
	}
}
