package platform

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// TestConfigureWindowsServiceSetsRecovery creates a service the way the
// installer does and applies the runner's recovery settings with svc/mgr.
func TestConfigureWindowsServiceSetsRecovery(t *testing.T) {
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	name := fmt.Sprintf("labrunner-test-%d", time.Now().UnixNano())
	s, err := m.CreateService(name, `C:\windows\system32\cmd.exe`, mgr.Config{DisplayName: ServiceDisplayName, StartType: mgr.StartManual})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(); s.Close() })

	err = ConfigureWindowsService(name)
	if underWine() && err != nil {
		t.Logf("under Wine: %v", err)
		// Wine 8's SCM rejects the delayed-start and recovery config
		// levels ("Invalid level"); everything else must have worked.
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, "Invalid level") && !strings.HasPrefix(line, "configure service") {
				t.Errorf("unexpected failure under Wine: %s", line)
			}
		}
	} else if err != nil {
		t.Fatal(err)
	}
	if st := startType(t, s); st != windows.SERVICE_AUTO_START {
		t.Errorf("start type %d, want automatic (%d)", st, windows.SERVICE_AUTO_START)
	}
	if underWine() {
		return
	}
	cfg, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.DelayedAutoStart {
		t.Errorf("delayed auto-start not set")
	}
	acts, err := s.RecoveryActions()
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 || acts[0].Type != mgr.ServiceRestart || acts[2].Delay != time.Minute {
		t.Errorf("recovery actions %+v", acts)
	}
	if on, err := s.RecoveryActionsOnNonCrashFailures(); err != nil || !on {
		t.Errorf("recovery on non-crash failures: %v %v", on, err)
	}
}

func TestConfigureMissingServiceNamesIt(t *testing.T) {
	err := ConfigureWindowsService("labrunner-no-such-service")
	if err == nil || !strings.Contains(err.Error(), "labrunner-no-such-service") {
		t.Errorf("error %v, want one naming the service", err)
	}
}

// TestRunAsServiceFromAConsoleIsInteractive: started from a console (as
// tests are), svc.Run fails with 1063 and run is not called.
func TestRunAsServiceFromAConsoleIsInteractive(t *testing.T) {
	called := false
	isService, err := RunAsService("labrunner-test", func(context.Context) error { called = true; return nil })
	if isService || err != nil || called {
		t.Errorf("isService %v err %v called %v; want false, nil, false", isService, err, called)
	}
	if !errors.Is(windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, windows.Errno(1063)) {
		t.Errorf("ERROR_FAILED_SERVICE_CONTROLLER_CONNECT is not 1063")
	}
}

// startType reads the start type with QueryServiceConfig alone, which Wine
// supports (mgr's Config also reads levels Wine lacks).
func startType(t *testing.T, s *mgr.Service) uint32 {
	t.Helper()
	var need uint32
	_ = windows.QueryServiceConfig(s.Handle, nil, 0, &need)
	buf := make([]byte, need)
	qc := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
	if err := windows.QueryServiceConfig(s.Handle, qc, need, &need); err != nil {
		t.Fatalf("QueryServiceConfig: %v", err)
	}
	return qc.StartType
}

// TestServiceHandlerStopDrainsThenStops drives the handler as the service
// manager would: Running, then a Stop that cancels run's context, with
// StopPending reported until run returns.
func TestServiceHandlerStopDrainsThenStops(t *testing.T) {
	release := make(chan struct{})
	h := &serviceHandler{run: func(ctx context.Context) error {
		<-ctx.Done()
		<-release // draining
		return nil
	}}
	req := make(chan svc.ChangeRequest)
	st := make(chan svc.Status, 100)
	type result struct {
		specific bool
		code     uint32
	}
	done := make(chan result, 1)
	go func() { s, c := h.Execute(nil, req, st); done <- result{s, c} }()
	if s := <-st; s.State != svc.StartPending {
		t.Fatalf("first status %v", s.State)
	}
	if s := <-st; s.State != svc.Running || s.Accepts&svc.AcceptStop == 0 {
		t.Fatalf("second status %+v", s)
	}
	req <- svc.ChangeRequest{Cmd: svc.Stop}
	if s := <-st; s.State != svc.StopPending {
		t.Fatalf("after Stop: %v", s.State)
	}
	close(release)
	if r := <-done; r.specific || r.code != 0 {
		t.Errorf("clean stop returned %+v, want (false, 0)", r)
	}
}

// TestServiceHandlerRunFailureIsAFailureExit: a run that ends by itself
// must look like a failure so that the recovery actions restart it.
func TestServiceHandlerRunFailureIsAFailureExit(t *testing.T) {
	h := &serviceHandler{run: func(context.Context) error { return errors.New("boom") }}
	st := make(chan svc.Status, 10)
	specific, code := h.Execute(nil, make(chan svc.ChangeRequest), st)
	if !specific || code != 1 || h.err == nil {
		t.Errorf("got (%v, %d, %v), want (true, 1, boom)", specific, code, h.err)
	}
}

// TestStopServiceAndWaitOnAMissingServiceIsDone: an uninstall on a machine
// whose service is already gone must not fail.
func TestStopServiceAndWaitOnAMissingServiceIsDone(t *testing.T) {
	handled, err := StopServiceAndWait("labrunner-no-such-service", time.Second)
	if !handled || err != nil {
		t.Errorf("got (%v, %v), want (true, nil)", handled, err)
	}
}
