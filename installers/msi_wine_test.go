package installers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

const (
	dataDir    = `C:\ProgramData\labrunner`
	configFile = dataDir + `\runner.yml`
	linkFile   = dataDir + `\provisioner-link.json`
	installDir = `C:\Program Files\labrunner`
	adminToken = "installers-test-admin-token-0123456789"
	// waitFor bounds each wait for the service; a hang guard, not a timing assertion.
	waitFor = 90 * time.Second
)

// TestMSIUnderWine installs, upgrades and uninstalls the MSI with Wine's
// msiexec against a provisioner on loopback: a refused token installs
// nothing; the silent install enrols the machine and starts the service,
// which heartbeats; the upgrade keeps the machine and its config; the
// uninstall keeps the data unless REMOVE_DATA=1. Each step's time is a
// FIGURE line.
func TestMSIUnderWine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Wine runs on Linux")
	}
	v1, v2 := buildMSI(t, "1.0.0"), buildMSI(t, "1.0.1")
	if fi, err := os.Stat(v1); err == nil {
		t.Logf("FIGURE msi size: %d bytes (%.1f MB)", fi.Size(), float64(fi.Size())/(1<<20))
	}
	w := newWinePrefix(t)
	prov, admin := startProvisioner(t)
	ctx := context.Background()

	// A refused token: the install fails and leaves nothing.
	log, code, _ := w.msiexec("/i", winPath(v1), "/qn", "PROVISIONER_URL="+prov, "ENROLLMENT_TOKEN=lre_made-up-token-0123456789")
	if code == 0 {
		t.Fatalf("install with a made-up token succeeded; log:\n%s", tail(log))
	}
	if st := w.serviceState(); st != "" || fileExists(w.path(configFile)) || fileExists(w.path(installDir)) {
		t.Fatalf("a refused install left service %q, config %v, program %v", st, fileExists(w.path(configFile)), fileExists(w.path(installDir)))
	}

	// The one-line silent install.
	tok, err := admin.CreateToken(ctx, client.TokenRequest{Kind: client.TokenEnroll, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	log, code, took := w.msiexec("/i", winPath(v1), "/qn", "PROVISIONER_URL="+prov, "ENROLLMENT_TOKEN="+tok.Token, "POOL_HINT=win11-hw", "TAGS=gpu=yes,rack=4",
		// Wine's LocalSystem lacks the privileges per-task users need.
		"TASK_USER=service")
	if code != 0 {
		t.Fatalf("install exited %d:\n%s", code, tail(log))
	}
	t.Logf("FIGURE msi install under Wine (enrolment and service start included): %v", took.Round(10*time.Millisecond))
	if strings.Contains(log, tok.Token) {
		t.Errorf("the install log shows the enrollment token")
	}
	for _, step := range []string{"ConfigureRunnerService", "EnrollRunner", "StartRunner"} {
		if !strings.Contains(log, "Action start") || !strings.Contains(log, step) {
			t.Errorf("the install log does not show %s running", step)
		}
	}
	cfg := readFile(t, w.path(configFile))
	if strings.Contains(cfg, tok.Token) || !strings.Contains(cfg, "url: "+prov) || !strings.Contains(cfg, "taskUser: service") {
		t.Errorf("config written by the install:\n%s", cfg)
	}
	id := linkMachineID(t, w)
	m := waitMachine(t, admin, id, func(m *client.MachineDetail) bool { return m.LastHeartbeat != nil && m.Online })
	if m.Facts.Tags["pool"] != "win11-hw" || m.Facts.Tags["gpu"] != "yes" || m.Facts.Tags["rack"] != "4" {
		t.Errorf("machine tags %v, want POOL_HINT and TAGS", m.Facts.Tags)
	}
	if st := w.serviceState(); st != "RUNNING" {
		t.Errorf("service state %q after install, want RUNNING", st)
	}
	// The ACL on ProgramData\labrunner (SYSTEM and Administrators) is not
	// checked here: Wine accepts SetNamedSecurityInfo but keeps no file
	// DACLs. platform's tests check it on Windows.
	checkARP(t, w, "1.0.0")

	// Major upgrade, no properties: same machine, same config, new binary.
	regBefore := m.Registered
	log, code, took = w.msiexec("/i", winPath(v2), "/qn")
	if code != 0 {
		t.Fatalf("upgrade exited %d:\n%s", code, tail(log))
	}
	t.Logf("FIGURE msi upgrade 1.0.0 -> 1.0.1 under Wine: %v", took.Round(10*time.Millisecond))
	if got := linkMachineID(t, w); got != id {
		t.Errorf("machine id %q after the upgrade, was %q", got, id)
	}
	if got := readFile(t, w.path(configFile)); got != cfg {
		t.Errorf("the upgrade changed the config:\n%s", got)
	}
	if st := w.serviceState(); st != "RUNNING" {
		t.Errorf("service state %q after the upgrade, want RUNNING", st)
	}
	checkARP(t, w, "1.0.1")
	if codes := w.installedProducts(); len(codes) != 1 {
		t.Errorf("installed labrunner products after the upgrade: %v, want one", codes)
	}
	ms, err := admin.ListMachines(ctx, "")
	if err != nil || len(ms) != 1 || ms[0].MachineID != id || !ms[0].Registered.Equal(regBefore) {
		t.Errorf("machines after the upgrade %+v (%v); want only %s, not registered again", ms, err, id)
	}

	// Uninstall: service and program gone, data kept.
	log, code, took = w.msiexec("/x", winPath(v2), "/qn")
	if code != 0 {
		t.Fatalf("uninstall exited %d:\n%s", code, tail(log))
	}
	t.Logf("FIGURE msi uninstall under Wine: %v", took.Round(10*time.Millisecond))
	if st := w.serviceState(); st != "" {
		t.Errorf("service %q after uninstall, want none", st)
	}
	if fileExists(w.path(installDir + `\runner.exe`)) {
		t.Errorf("runner.exe is still there after uninstall; the log says:\n%s", grepLines(log, "runner.exe", "reboot", "in use", "RemoveFiles", "StopServices", "error"))
	}
	if !fileExists(w.path(configFile)) || !fileExists(w.path(linkFile)) {
		t.Errorf("uninstall removed the config or the machine token; they must stay without REMOVE_DATA=1")
	}

	// Installed again without a token, the kept enrolment starts the
	// service; then REMOVE_DATA=1 removes everything.
	if log, code, _ = w.msiexec("/i", winPath(v2), "/qn"); code != 0 {
		t.Fatalf("reinstall exited %d:\n%s", code, tail(log))
	}
	if st := w.serviceState(); st != "RUNNING" {
		t.Errorf("service state %q after reinstall over kept data, want RUNNING", st)
	}
	if got := linkMachineID(t, w); got != id {
		t.Errorf("machine id %q after reinstall, was %q", got, id)
	}
	if log, code, _ = w.msiexec("/x", winPath(v2), "/qn", "REMOVE_DATA=1"); code != 0 {
		t.Fatalf("uninstall REMOVE_DATA=1 exited %d:\n%s", code, tail(log))
	}
	if fileExists(w.path(dataDir)) {
		t.Errorf("%s is still there after uninstall with REMOVE_DATA=1", dataDir)
	}
	if st := w.serviceState(); st != "" {
		t.Errorf("service %q after uninstall, want none", st)
	}
}

// TestMSIWithoutTokenInstallsWithoutStarting: installed with no enrolment
// (an operator enrols by hand later), the service exists but is not started.
func TestMSIWithoutTokenInstallsWithoutStarting(t *testing.T) {
	msi := buildMSI(t, "1.0.1")
	w := newWinePrefix(t)
	log, code, _ := w.msiexec("/i", winPath(msi), "/qn")
	if code != 0 {
		t.Fatalf("install exited %d:\n%s", code, tail(log))
	}
	if st := w.serviceState(); st != "STOPPED" {
		t.Errorf("service state %q, want STOPPED (installed, not enrolled)", st)
	}
	if fileExists(w.path(configFile)) {
		t.Errorf("a config was written without enrolment")
	}
	if _, code, _ := w.msiexec("/x", winPath(msi), "/qn"); code != 0 {
		t.Fatalf("uninstall exited %d", code)
	}
}

func startProvisioner(t *testing.T) (string, *client.Client) {
	t.Helper()
	srv, err := provisioner.New(provisioner.Config{
		DB: filepath.Join(t.TempDir(), "prov.db"), AdminTokens: []string{adminToken}, CancelPollInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler()) // 127.0.0.1: loopback
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	return hs.URL, client.New(hs.URL, adminToken, client.WithRetries(0, 0, 0))
}

// linkMachineID reads the machine id the enrolment saved.
func linkMachineID(t *testing.T, w *winePrefix) string {
	t.Helper()
	var st struct {
		MachineID    string `json:"machineId"`
		MachineToken string `json:"machineToken"`
	}
	if err := json.Unmarshal([]byte(readFile(t, w.path(linkFile))), &st); err != nil || st.MachineID == "" || st.MachineToken == "" {
		t.Fatalf("link state: %+v, %v", st, err)
	}
	return st.MachineID
}

func waitMachine(t *testing.T, admin *client.Client, id string, ok func(*client.MachineDetail) bool) *client.MachineDetail {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		m, err := admin.GetMachine(context.Background(), id)
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("machine %s: %+v, %v; the service never heartbeat", id, m, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// checkARP: the Add/Remove Programs entry names the version and publisher.
func checkARP(t *testing.T, w *winePrefix, version string) {
	t.Helper()
	codes := w.installedProducts()
	if len(codes) != 1 {
		t.Fatalf("Add/Remove Programs lists labrunner %d times (%v), want once", len(codes), codes)
	}
	key := `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\` + codes[0]
	for name, want := range map[string]string{"DisplayVersion": version, "Publisher": "labrunner"} {
		if got, _ := w.regValue(key, name); got != want {
			t.Errorf("Add/Remove Programs %s = %q, want %q", name, got, want)
		}
	}
	if got, _ := w.regValue(`HKLM\SOFTWARE\labrunner`, "Version"); got != version {
		t.Errorf(`HKLM\SOFTWARE\labrunner Version = %q, want %q`, got, version)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tail is the start and the end of a long log, for failure messages.
func tail(s string) string {
	if len(s) > 6000 { // msiexec's own output (the runner's messages) first, then the log's end
		return s[:3000] + "\n…\n" + s[len(s)-3000:]
	}
	return s
}

// grepLines is the lines of s that contain any of words (case-insensitive).
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(strings.ToLower(l), strings.ToLower(w)) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
